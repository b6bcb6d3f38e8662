"""The evaluation loop: inference, post-processing, official-style metrics.

The counterpart of DeepLab2's ``trainer/evaluator.py`` (an orbit evaluator);
the metrics themselves are ``remax_tf.evaluation.panoptic_evaluator``'s.

The model and the post-processor run in a tf.function per batch; metrics
(PQ, SQ, RQ, mIoU, optionally mask AP) accumulate on the host in
:class:`remax_tf.evaluation.PanopticEvaluator` at the original image size.
Results go to TensorBoard (``eval/``) and to
``eval/metrics_step_<N>.json`` plus ``eval/metrics_latest.json``. With
``evaluator_options.save_predictions`` the predictions are also written in
COCO panoptic format (PNGs in ``predictions/step_<N>/`` and
``predictions/step_<N>.json`` under ``eval/``, or under
``override_save_dir``), scorable with ``remax-evaluate``.
"""

from __future__ import annotations

import os
from typing import Dict
from typing import List
from typing import Optional

import numpy as np
import orbit
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.evaluation import PanopticEvaluator
from remax_tf.evaluation.coco_format import coco_categories
from remax_tf.evaluation.coco_format import image_ids
from remax_tf.evaluation.coco_panoptic import CocoPanopticWriter
from remax_tf.json_io import write_json_atomic
from remax_tf.postprocess import build_post_processor
from remax_tf.postprocess import undo_preprocessing
from remax_tf.training.inputs import distributed_dataset

# Scalars that go to TensorBoard; the JSON holds everything.
_SUMMARY_METRICS = (
    "pq",
    "sq",
    "rq",
    "pq_things",
    "pq_stuff",
    "pq_things_class_agnostic",
    "thing_label_accuracy",
    "miou",
)
# save_predictions: <output_dir>/predictions/step_<N>/ and step_<N>.json.
PREDICTIONS_DIR = "predictions"
# Ground-truth keys the host-side metrics read.
_GT_KEYS = (
    common.GT_PANOPTIC_RAW,
    common.GT_SEMANTIC_RAW,
    common.GT_IS_CROWD_RAW,
    common.GT_SIZE_RAW,
    common.IMAGE_NAME,
)


class Evaluator(orbit.StandardEvaluator):
    """Evaluates the model on ``eval_dataset_options``."""

    def __init__(
        self,
        *,
        config,
        model: tf_keras.Model,
        descriptor,
        strategy,
        global_step,
        output_dir: str,
    ):

        options = config.eval_dataset_options
        if options.batch_size != strategy.num_replicas_in_sync:
            raise ValueError(
                f"eval_dataset_options.batch_size = {options.batch_size}: evaluation runs one "
                f"image per replica ({strategy.num_replicas_in_sync}), as in DeepLab2. Fix: set "
                f"it to {strategy.num_replicas_in_sync}."
            )
        dataset = distributed_dataset(strategy, options, is_training=False)
        super().__init__(
            dataset,
            options=orbit.StandardEvaluatorOptions(
                use_tf_function=config.evaluator_options.use_tf_function,
                use_tf_while_loop=False,
            ),
        )
        self._model = model
        self._strategy = strategy
        self._global_step = global_step
        self._output_dir = output_dir
        self._post_processor = build_post_processor(
            config.evaluator_options, descriptor, list(options.crop_size)
        )
        self._metrics = PanopticEvaluator(descriptor, config.evaluator_options)
        self._results = _Results()
        evaluator_options = config.evaluator_options
        self._descriptor = descriptor
        self._predictions_dir = (
            evaluator_options.override_save_dir
            or os.path.join(output_dir, PREDICTIONS_DIR)
            if evaluator_options.save_predictions
            else None
        )
        self._writer = _Writer()

    @property
    def last_results(self) -> Optional[Dict[str, object]]:
        return self._results.value

    def eval_begin(self):
        self._metrics.reset()
        if self._predictions_dir is not None:
            folder = os.path.join(
                self._predictions_dir, f"step_{int(self._global_step.numpy())}"
            )
            self._writer.value = CocoPanopticWriter(
                folder,
                folder + ".json",
                self._descriptor,
                categories=coco_categories(self._descriptor),
            )
        return 0

    def eval_step(self, iterator):
        def step(inputs):
            outputs = self._model(inputs[common.IMAGE], training=False)
            processed = self._post_processor(outputs)
            size = inputs[common.GT_SIZE_RAW][0]
            resized = inputs[common.RESIZED_SIZE][0]
            processed = undo_preprocessing(processed, resized, size)
            kept = {k: inputs[k] for k in _GT_KEYS if k in inputs}
            kept.update(processed)
            return kept

        return self._strategy.run(step, args=(next(iterator),))

    def eval_reduce(self, state, step_outputs):
        for outputs in _local_results(self._strategy, step_outputs):
            arrays = {k: v.numpy() for k, v in outputs.items()}
            sample = {k: arrays[k] for k in _GT_KEYS if k in arrays}
            if common.IMAGE_NAME in sample:
                sample[common.IMAGE_NAME] = np.array(
                    [n.decode() for n in sample[common.IMAGE_NAME]]
                )
            prediction = {k: v for k, v in arrays.items() if k not in sample}
            self._metrics.update(sample, prediction)
            if self._writer.value is not None:
                self._save(sample, prediction)
        return state + 1

    def _save(self, sample, prediction) -> None:
        """Writes each image's panoptic map (COCO PNG) with its segments."""
        names = sample.get(common.IMAGE_NAME)
        scores = prediction.get(common.PRED_SEMANTIC_SCORES_KEY)
        for b, panoptic in enumerate(prediction[common.PRED_PANOPTIC_KEY]):
            height, width = (int(v) for v in sample[common.GT_SIZE_RAW][b])
            name = str(names[b]) if names is not None else f"image_{b}"
            self._writer.value.add(
                image_ids([name])[0],
                name,
                panoptic[:height, :width],
                scores=None if scores is None else scores[b][:height, :width],
            )

    def eval_end(self, *args) -> Dict[str, float]:
        results = self._metrics.result()
        step = int(self._global_step.numpy())
        results["global_step"] = step
        os.makedirs(self._output_dir, exist_ok=True)
        write_json_atomic(
            os.path.join(self._output_dir, f"metrics_step_{step}.json"), results
        )
        write_json_atomic(
            os.path.join(self._output_dir, "metrics_latest.json"), results
        )
        self._results.value = results
        shown = [k for k in _SUMMARY_METRICS if results.get(k) is not None]
        line = " | ".join(f"{k} {100 * results[k]:.2f}" for k in shown)
        print(
            f"[eval] step {step}: {line} ({results['num_images']} images)", flush=True
        )
        if self._writer.value is not None:
            self._writer.value.close()
            print(
                f"[eval] predictions: {self._writer.value.pred_json} and "
                f"{self._writer.value.pred_folder}/",
                flush=True,
            )
            self._writer.value = None
        return {f"metrics/{k}": results[k] for k in shown}


class _Writer:
    """Holds the CocoPanopticWriter of an evaluation outside tf.Module's
    attribute tracking."""

    value = None


class _Results:
    """Holds the latest metrics outside tf.Module's attribute tracking (which
    would wrap the dict)."""

    value: Optional[Dict[str, object]] = None


def _local_results(strategy, value) -> List[Dict[str, tf.Tensor]]:
    """Per-replica dicts of this host."""
    keys = list(value)
    columns = {k: strategy.experimental_local_results(value[k]) for k in keys}
    count = len(columns[keys[0]]) if keys else 0
    return [{k: columns[k][i] for k in keys} for i in range(count)]

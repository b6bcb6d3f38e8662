"""Partial restore of pretrained pixel-encoder weights from a TF2 checkpoint.

Two checkpoint layouts are accepted, told apart by their keys:

* a whole-model checkpoint whose root holds the encoder under ``encoder``
  (DeepLab2's ``checkpoint_items`` name, ``remax_tf.common.CKPT_ENCODER``):
  ``tf.train.Checkpoint(encoder=encoder, ...)``;
* the encoder itself as the root: ``tf.train.Checkpoint(encoder_model)`` or
  ``encoder_model.save_weights(prefix)``.

Variables are matched through the checkpoint's object graph (as
``tf.train.Checkpoint.read`` does). :func:`load_pretrained_weights` checks the
shapes of every match before restoring anything, then returns a
:class:`RestoreReport` of what was restored, what kept its initial value, and
what in the checkpoint went unused.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Dict
from typing import List
from typing import Tuple

import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2
import tf_keras

from remax_tf import common

_LOGGER = logging.getLogger(__name__)
# tf.train.Checkpoint's key of the serialized object graph.
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VARIABLE_ATTRIBUTE = "VARIABLE_VALUE"


@dataclasses.dataclass(frozen=True)
class RestoreReport:
    """What a partial restore did.

    Attributes:
      checkpoint: The checkpoint prefix read.
      layout: ``'encoder_item'`` or ``'encoder_root'``.
      restored: Names of the model variables restored from the checkpoint.
      missing: Names of model variables the checkpoint does not have; they keep
        their initial values.
      unused: Checkpoint keys inside the encoder's subtree that no model
        variable took.
    """

    checkpoint: str
    layout: str
    restored: Tuple[str, ...]
    missing: Tuple[str, ...]
    unused: Tuple[str, ...]

    def summary(self) -> str:
        return (
            f"{self.checkpoint} ({self.layout}): restored {len(self.restored)} "
            f"variables, {len(self.missing)} missing from the checkpoint, "
            f"{len(self.unused)} checkpoint variables unused"
        )


def _resolve_prefix(path: str) -> str:
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"pretrained_weights directory {path!r} holds no checkpoint "
                "(no 'checkpoint' state file); pass a checkpoint prefix instead."
            )
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(
            f"pretrained_weights {path!r} is not a TF2 checkpoint prefix: "
            f"{path}.index does not exist."
        )
    return path


def _object_graph(reader) -> trackable_object_graph_pb2.TrackableObjectGraph:
    if not reader.has_tensor(_OBJECT_GRAPH_KEY):
        raise ValueError(
            "pretrained_weights must be an object-based (TF2 tf.train.Checkpoint) "
            "checkpoint; this one has no object graph (a TF1 name-based "
            "checkpoint?)."
        )
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    return graph


def _subtree_variable_keys(
    graph: trackable_object_graph_pb2.TrackableObjectGraph, start: int, skip: set
) -> Dict[str, int]:
    """Checkpoint key -> node id of every variable below ``start``."""
    keys, seen, queue = {}, {start}, collections.deque([start])
    while queue:
        node_id = queue.popleft()
        node = graph.nodes[node_id]
        for attribute in node.attributes:
            if attribute.name == _VARIABLE_ATTRIBUTE:
                keys[attribute.checkpoint_key] = node_id
        for child in node.children:
            if child.node_id not in seen and child.local_name not in skip:
                seen.add(child.node_id)
                queue.append(child.node_id)
    return keys


def load_pretrained_weights(model: tf_keras.Model, path: str) -> RestoreReport:
    """Restores the variables of ``model`` found in the checkpoint at ``path``.

    Args:
      model: A built encoder.
      path: A checkpoint prefix, or a directory whose latest checkpoint is used.

    Returns:
      The :class:`RestoreReport`.

    Raises:
      FileNotFoundError: If ``path`` is not a checkpoint.
      ValueError: If no variable of ``model`` is in the checkpoint, or matched
        variables have other shapes (a checkpoint of another backbone); nothing
        is restored then.
    """
    prefix = _resolve_prefix(path)
    reader = tf.train.load_checkpoint(prefix)
    graph = _object_graph(reader)
    root_children = {c.local_name: c.node_id for c in graph.nodes[0].children}
    if common.CKPT_ENCODER in root_children:
        layout = "encoder_item"
        root = tf.train.Checkpoint(**{common.CKPT_ENCODER: model})
        match_root = root
        subtree = _subtree_variable_keys(
            graph, root_children[common.CKPT_ENCODER], skip=set()
        )
    else:
        layout = "encoder_root"
        root = tf.train.Checkpoint(model)
        # A Checkpoint built on a root object stands for that object.
        match_root = model
        subtree = _subtree_variable_keys(graph, 0, skip={"save_counter", "optimizer"})

    matches = tf.train.CheckpointView(prefix).match(match_root)
    node_keys = collections.defaultdict(list)
    for key, node_id in subtree.items():
        node_keys[node_id].append(key)
    shapes = reader.get_variable_to_shape_map()

    restored: List[str] = []
    mismatched: List[str] = []
    taken = set()
    matched_ids = set()
    for node_id, trackable in matches.items():
        if not isinstance(trackable, tf.Variable) or node_id not in node_keys:
            continue
        key = node_keys[node_id][0]
        taken.add(key)
        matched_ids.add(id(trackable))
        if tuple(shapes[key]) != tuple(trackable.shape.as_list()):
            mismatched.append(
                f"{trackable.name}: model {trackable.shape.as_list()} vs "
                f"checkpoint {shapes[key]} ({key})"
            )
        else:
            restored.append(trackable.name)
    if mismatched:
        raise ValueError(
            f"pretrained_weights {prefix!r} does not fit encoder {model.name!r}: "
            f"{len(mismatched)} variables differ in shape, e.g. "
            + "; ".join(mismatched[:5])
            + ". Is it a checkpoint of another backbone?"
        )
    if not restored:
        raise ValueError(
            f"pretrained_weights {prefix!r} holds no variable of encoder "
            f"{model.name!r} (layout {layout}); expected a tf.train.Checkpoint "
            f"with the encoder as its root or under {common.CKPT_ENCODER!r}."
        )
    root.read(prefix).expect_partial()
    report = RestoreReport(
        checkpoint=prefix,
        layout=layout,
        restored=tuple(restored),
        missing=tuple(v.name for v in model.weights if id(v) not in matched_ids),
        unused=tuple(sorted(set(subtree) - taken)),
    )
    _LOGGER.info("Pretrained encoder weights: %s", report.summary())
    if report.missing:
        _LOGGER.warning(
            "Encoder variables not in %s (kept at init): %s", prefix, report.missing
        )
    return report

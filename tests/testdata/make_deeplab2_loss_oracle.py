"""Writes ``deeplab2_loss_oracle.npz``: DeepLab2's kMaX loss terms on fixed inputs.

    DEEPLAB2_ROOT=/path/to/deeplab2 \\
        python tests/testdata/make_deeplab2_loss_oracle.py

``DEEPLAB2_ROOT`` is the ``deeplab2`` package folder of a google-research/deeplab2
checkout with its protos compiled (as for tests/model/test_deeplab2_checkpoints.py);
its parent goes on ``sys.path`` here. DeepLab2 runs with ``TF_USE_LEGACY_KERAS=1``.
Written with DeepLab2 at commit 64bc1c1a6505b6cd1779b65f9127180840b8a4fa
(2023-04-17), TensorFlow 2.20.

The loss is DeepLab2's own ``loss_builder.DeepLabFamilyLoss`` (what its
``train_lib.py`` builds) with the ``loss_options`` and ``model_options`` of its
COCO kMaX config ``configs/coco/kmax_deeplab/kmax_meta_r50_os32.textproto``:
PQ-style 3.0, mask-ID 0.3, instance discrimination 1.0 (pixel-contrastive),
semantic 1.0, six auxiliary outputs (kMaX's hard-coded number). One setting is
changed: ``instance_discrimination_sample_k`` (4096 in the config) becomes the
number of output pixels, 17 x 17 = 289, because DeepLab2's ``top_k`` fails
when K exceeds it (docs/method.md, deliberate difference 4). With K equal to
the pixel count every pixel is drawn, so the random sample is the whole image
in some order and the loss, a mean over pixels, is deterministic.
DeepLab2's loss builder never passes ``semantic_sample_k``, so its semantic
loss uses every pixel (docs/method.md, difference 5).

Inputs (numpy seed 0, no randomness elsewhere): batch 2, a 33 x 33 crop, 17 x 17
mask logits (stride 2), 8 mask slots, 8-channel pixel features, a toy class
layout of 7 dataset ids: 0 void, things 2 and 5, stuff 1, 3, 4 and 6 (not in
things-then-stuff order, so the id mapping is exercised). ``max_thing_id`` 6,
so the number of ground-truth masks G = 6 + 4 = 10 exceeds the 8 slots, as on
COCO (128 slots, G = 128 + 53). Image 0 has 4 thing instances and 3 stuff
classes, a crowd region (thing class, no instance id), void pixels and a thing
instance that vanishes at the output stride; image 1 has 8 valid masks (every
slot matched). No image has more valid masks than slots (difference 3).
Predictions are ground-truth-correlated logits plus noise. Float inputs are
stored as float16 (exact values; both losses see their float32 casts) to keep
the file small, about 150 kB.

The fixture of tests/losses/test_deeplab2_loss_oracle.py, which needs no
DeepLab2. Keys: ``y_true/<key>``, ``y_pred/<key>``, ``aux<i>/<key>`` for the
inputs, ``loss/<deeplab2 loss name>`` ([batch] per-sample losses as DeepLab2
returns them), plus the layout and settings used.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402

DEEPLAB2_COMMIT = "64bc1c1a6505b6cd1779b65f9127180840b8a4fa"
CONFIG = "configs/coco/kmax_deeplab/kmax_meta_r50_os32.textproto"
BATCH = 2
CROP = 33
OUTPUT = 17
NUM_SLOTS = 8
FEATURE_DIM = 8
NUM_AUXILIARY = 6
NUM_CLASSES = 7
IGNORE_LABEL = 0
THING_IDS = (2, 5)
STUFF_IDS = (1, 3, 4, 6)
MAX_THING_ID = 6
# Semantic-loss weight of the pixels of thing instance 0 (the rest: 1).
SMALL_INSTANCE_WEIGHT = 2.5


def ground_truth():
    """[B, CROP, CROP] semantic / thing-id maps, [B, MAX_THING_ID] classes."""
    semantic = np.zeros((BATCH, CROP, CROP), np.int32)
    thing_id = -np.ones((BATCH, CROP, CROP), np.int32)
    thing_class = -np.ones((BATCH, MAX_THING_ID), np.int32)
    weight = np.ones((BATCH, CROP, CROP), np.float32)

    def thing(b, index, cls, rows, cols):
        semantic[b, rows, cols] = cls
        thing_id[b, rows, cols] = index
        thing_class[b, index] = cls

    # Image 0: stuff 1 (top), 3 (middle), 6 (bottom); ids 4 absent.
    semantic[0, :11] = 1
    semantic[0, 11:22] = 3
    semantic[0, 22:] = 6
    semantic[0, :, 30:] = IGNORE_LABEL  # void columns
    semantic[0, 0:2, :] = IGNORE_LABEL  # void rows
    thing(0, 0, 2, slice(3, 9), slice(3, 11))
    weight[0, 3:9, 3:11] = SMALL_INSTANCE_WEIGHT
    thing(0, 1, 5, slice(12, 24), slice(4, 12))
    thing(0, 2, 2, slice(14, 20), slice(16, 27))
    thing(0, 3, 5, slice(25, 31), slice(18, 24))
    # Vanishes at stride 2: only odd rows and columns.
    thing(0, 4, 2, slice(27, 28), slice(3, 4))
    semantic[0, 26:31, 6:12] = 2  # crowd: thing class, no instance id
    # Image 1: all four stuff classes and four things: 8 valid masks.
    semantic[1, :, :9] = 1
    semantic[1, :, 9:17] = 3
    semantic[1, :, 17:25] = 4
    semantic[1, :, 25:] = 6
    semantic[1, 30:, :] = IGNORE_LABEL
    thing(1, 0, 5, slice(2, 10), slice(2, 8))
    weight[1, 2:10, 2:8] = SMALL_INSTANCE_WEIGHT
    thing(1, 1, 2, slice(12, 20), slice(10, 30))
    thing(1, 2, 5, slice(22, 28), slice(3, 15))
    thing(1, 3, 2, slice(2, 8), slice(20, 26))
    semantic[1, 24:30, 20:28] = 5  # crowd
    return semantic, thing_id, thing_class, weight


def predictions(rng, semantic, thing_id):
    """Ground-truth-correlated logits plus noise, as float16-exact arrays."""
    thing_stuff = THING_IDS + STUFF_IDS
    small_semantic = semantic[:, ::2, ::2]
    small_thing = thing_id[:, ::2, ::2]
    # Ground-truth mask index per output pixel (things, then stuff), -1: none.
    mask_index = np.where(
        small_thing >= 0,
        small_thing,
        np.where(
            np.isin(small_semantic, STUFF_IDS),
            MAX_THING_ID
            + np.searchsorted(STUFF_IDS, small_semantic).clip(0, len(STUFF_IDS) - 1),
            -1,
        ),
    )
    num_masks = MAX_THING_ID + len(STUFF_IDS)
    mask_class = np.full((BATCH, num_masks), -1)
    for b in range(BATCH):
        for g in range(num_masks):
            pixels = small_semantic[b][mask_index[b] == g]
            if pixels.size:
                mask_class[b, g] = thing_stuff.index(int(pixels[0]))

    def output():
        slot_of_mask = np.stack([rng.permutation(num_masks) for _ in range(BATCH)])
        masks = 2.0 * rng.normal(size=(BATCH, OUTPUT, OUTPUT, NUM_SLOTS))
        classes = 2.0 * rng.normal(size=(BATCH, NUM_SLOTS, len(thing_stuff) + 1))
        for b in range(BATCH):
            for g in range(num_masks):
                slot = slot_of_mask[b, g]
                if slot >= NUM_SLOTS or mask_class[b, g] < 0:
                    continue
                masks[b, :, :, slot] += 3.0 * (mask_index[b] == g)
                classes[b, slot, mask_class[b, g]] += 2.0
        feature = rng.normal(size=(BATCH, OUTPUT, OUTPUT, FEATURE_DIM))
        feature[..., 0] += 2.0 * (mask_index % 3 == 0)
        feature[..., 1] += 2.0 * (mask_index % 3 == 1)
        feature /= np.linalg.norm(feature, axis=-1, keepdims=True)
        return {
            "pixel_space_mask_logits": masks.astype(np.float16),
            "transformer_class_logits": classes.astype(np.float16),
            "pixel_space_normalized_feature": feature.astype(np.float16),
        }

    final = output()
    final["semantic_logits"] = (
        2.0 * rng.normal(size=(BATCH, OUTPUT, OUTPUT, NUM_CLASSES))
    ).astype(np.float16)
    return final, [output() for _ in range(NUM_AUXILIARY)]


def deeplab2_losses(deeplab2_root, arrays):
    sys.path.insert(0, os.path.dirname(os.path.abspath(deeplab2_root)))
    from deeplab2 import common
    from deeplab2 import config_pb2
    from deeplab2.model.loss import loss_builder
    from google.protobuf import text_format
    import tensorflow as tf

    with open(os.path.join(deeplab2_root, CONFIG)) as f:
        text = f.read()
    config = text_format.Parse(text, config_pb2.ExperimentOptions())
    model_options = config.model_options
    model_options.max_deeplab.instance_discrimination_sample_k = OUTPUT * OUTPUT
    loss = loss_builder.DeepLabFamilyLoss(
        loss_options=config.trainer_options.loss_options,
        deeplab_options=model_options,
        num_classes=NUM_CLASSES,
        ignore_label=IGNORE_LABEL,
        ignore_depth=None,
        thing_class_ids=THING_IDS,
        auxiliary_output_number=NUM_AUXILIARY,
    )

    def f32(key):
        return tf.constant(arrays[key].astype(np.float32))

    y_true = {
        common.GT_SEMANTIC_KEY: tf.constant(arrays["y_true/semantic_gt"]),
        common.GT_THING_ID_MASK_KEY: tf.constant(arrays["y_true/thing_id_mask_gt"]),
        common.GT_THING_ID_CLASS_KEY: tf.constant(arrays["y_true/thing_id_class_gt"]),
        common.SEMANTIC_LOSS_WEIGHT_KEY: f32("y_true/semantic_loss_weight"),
    }
    keys = (
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
        common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY,
    )
    y_pred = {key: f32(f"y_pred/{key}") for key in keys}
    y_pred[common.PRED_SEMANTIC_LOGITS_KEY] = f32(
        f"y_pred/{common.PRED_SEMANTIC_LOGITS_KEY}"
    )
    y_pred[common.PRED_AUXILIARY_OUTPUTS] = tuple(
        {key: f32(f"aux{i}/{key}") for key in keys} for i in range(NUM_AUXILIARY)
    )
    tf.random.set_seed(0)
    result = loss(y_true, y_pred)
    return {name: value.numpy() for name, value in result.items()}, config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deeplab2_root", default=os.environ.get("DEEPLAB2_ROOT"))
    parser.add_argument(
        "--output",
        default=os.path.join(os.path.dirname(__file__), "deeplab2_loss_oracle.npz"),
    )
    args = parser.parse_args()
    if not args.deeplab2_root:
        raise SystemExit("set DEEPLAB2_ROOT (or --deeplab2_root) to deeplab2/")

    rng = np.random.default_rng(0)
    semantic, thing_id, thing_class, weight = ground_truth()
    final, auxiliary = predictions(rng, semantic, thing_id)
    arrays = {
        "y_true/semantic_gt": semantic,
        "y_true/thing_id_mask_gt": thing_id,
        "y_true/thing_id_class_gt": thing_class,
        "y_true/semantic_loss_weight": weight.astype(np.float16),
    }
    arrays.update({f"y_pred/{key}": value for key, value in final.items()})
    for i, output in enumerate(auxiliary):
        arrays.update({f"aux{i}/{key}": value for key, value in output.items()})
    losses, config = deeplab2_losses(args.deeplab2_root, arrays)
    for name, value in losses.items():
        arrays[f"loss/{name}"] = value.astype(np.float32)
        print(f"{name:45s} {value}")
    max_deeplab = config.model_options.max_deeplab
    np.savez_compressed(
        args.output,
        **arrays,
        num_classes=NUM_CLASSES,
        ignore_label=IGNORE_LABEL,
        thing_class_ids=np.array(THING_IDS),
        num_auxiliary_outputs=NUM_AUXILIARY,
        instance_discrimination_sample_k=max_deeplab.instance_discrimination_sample_k,
        deeplab2_commit=DEEPLAB2_COMMIT,
        deeplab2_config=CONFIG,
    )
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
    main()

"""Writes ``maskwise_logits.npz``: raw outputs of a trained demo model.

    python tests/testdata/make_maskwise_logits.py \
        --checkpoint runs/demo/model/shapes_v2_remax/ckpt-400 \
        --tfrecord runs/demo/data/shapes_panoptic_v2/val-00000-of-00001.tfrecord

The fixture of tests/postprocess/test_maskwise_equivalence.py:
the mask logits [N, 17, 17, NQ] and class logits [N, NQ, NC + 1] of the
demo config (``configs/demo/shapes_v2_remax.textproto``) at crop 65, on the
first ``--num_images`` validation images, with the config's mask-wise
thresholds. float32, as the model produces them; about 270 kB.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CONFIG = "configs/demo/shapes_v2_remax.textproto"
CROP = 65


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--tfrecord", required=True)
    parser.add_argument("--num_images", type=int, default=4)
    parser.add_argument(
        "--output",
        default=os.path.join(os.path.dirname(__file__), "maskwise_logits.npz"),
    )
    args = parser.parse_args()

    import tensorflow as tf

    from remax_tf.config import load_config
    from remax_tf.config.small_crop import crop_overrides
    from remax_tf.data.tfrecord import parse_example
    from remax_tf.export.saved_model import build_serving_module
    from remax_tf.export.saved_model import export_descriptor
    from remax_tf.model import build_model
    from remax_tf.model.checkpoint_restore import restore_items

    overrides = crop_overrides(CROP)
    # The checkpoint holds every weight; no backbone initialisation.
    overrides.append('model_options.backbone.pretrained_weights=""')
    config = load_config(
        CONFIG, overrides, environ={"REMAX_DATA_DIR": "/nonexistent"}, validate=False
    )
    descriptor = export_descriptor(config)
    model = build_model(config, descriptor)
    model(tf.zeros([1, CROP, CROP, 3]), training=False)
    report = restore_items(model.checkpoint_items, args.checkpoint, what="--checkpoint")
    if report.missing:
        raise SystemExit(f"--checkpoint lacks model variables: {report.summary()}")
    module = build_serving_module(config, model, descriptor)
    masks, classes = [], []
    records = tf.data.TFRecordDataset(args.tfrecord).take(args.num_images)
    for serialized in records:
        image = parse_example(serialized, decode_label=False)["image"]
        raw, _, _ = module.logits(image[tf.newaxis])
        masks.append(raw["pixel_space_mask_logits"][0].numpy())
        classes.append(raw["transformer_class_logits"][0].numpy())
    options = config.evaluator_options
    maskwise = options.maskwise_postprocessing
    np.savez_compressed(
        args.output,
        pixel_space_mask_logits=np.stack(masks).astype(np.float32),
        transformer_class_logits=np.stack(classes).astype(np.float32),
        num_thing_classes=len(descriptor.thing_class_ids),
        pixel_confidence_threshold=options.pixel_confidence_threshold,
        thing_threshold=maskwise.transformer_class_confidence_threshold_thing,
        stuff_threshold=maskwise.transformer_class_confidence_threshold_stuff,
        overlapping_threshold=maskwise.overlapping_threshold,
        reorder_class_weight=maskwise.reorder_class_weight,
        reorder_mask_weight=maskwise.reorder_mask_weight,
        checkpoint=os.path.basename(args.checkpoint),
    )
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
    main()

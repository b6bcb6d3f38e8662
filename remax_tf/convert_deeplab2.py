"""Converts a DeepLab2 checkpoint into remax_tf's checkpoint layout.

    python -m remax_tf.convert_deeplab2 --config_file CFG \\
        --deeplab2_checkpoint PREFIX --output_dir D [--backbone_only] [--skip_class_heads]

Builds the model of ``CFG`` (a DeepLab2 kMaX textproto or a remax_tf config),
restores it from the DeepLab2 checkpoint (any layout of
:mod:`remax_tf.model.deeplab2_mapping`: a model-zoo or training checkpoint, an
ImageNet backbone checkpoint, the Model Garden layout, Keras weights), and
writes ``D/ckpt-0`` (``tf.train.Checkpoint(**model.checkpoint_items)``, what
``initial_checkpoint``, ``predict --model D`` and ``export --checkpoint D``
read; with ``--backbone_only`` the encoder alone, for
``backbone.pretrained_weights``) and ``D/conversion_report.json``. Both
appear together: they are written to a scratch folder in ``D`` and moved in.

Exit status 1, listing the names, when anything used at inference is left
unmapped: a DeepLab2 weight of the encoder, pixel decoder, transformer
decoder or prediction heads that no variable took, or an inference variable
that got no value (class heads excluded with ``--skip_class_heads`` aside);
then only the report is written, no checkpoint.
ReMaX's semantic heads and, with ``--skip_class_heads``, the class heads are
reported as left at initialisation; the optimizer slots and the step as
skipped.

Expected failures (a bad config, a checkpoint that is not DeepLab2's or does
not fit the config's model, an ``--output_dir`` that cannot be written,
checked before the model is built) print one ``error: ...`` line and exit
with status 1; ``--debug`` (or ``REMAX_TF_DEBUG=1``) also prints the
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import List
from typing import Optional
import uuid

import tensorflow as tf

from remax_tf import atomic
from remax_tf import cli
from remax_tf import common
from remax_tf.config import load_config
from remax_tf.inference.model_files import ModelFileError
from remax_tf.model import build_model
from remax_tf.model import deeplab2_mapping
from remax_tf.model.checkpoint_restore import CLASS_HEAD_PATTERNS

REPORT_FILE = "conversion_report.json"
CHECKPOINT_NAME = "ckpt-0"
# The model is built (variables created) on an input of this size; kMaX
# variables do not depend on it.
BUILD_CROP = 65


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m remax_tf.convert_deeplab2",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--config_file", required=True, help="experiment textproto")
    parser.add_argument(
        "--deeplab2_checkpoint",
        required=True,
        help="DeepLab2 checkpoint prefix (or a directory: its latest checkpoint)",
    )
    parser.add_argument(
        "--output_dir", required=True, help="writes ckpt-0 and the report here"
    )
    parser.add_argument(
        "--backbone_only",
        action="store_true",
        help="convert the encoder only (an ImageNet backbone checkpoint)",
    )
    parser.add_argument(
        "--skip_class_heads",
        action="store_true",
        help="leave the class-dependent layers at initialisation (another class set)",
    )
    parser.add_argument(
        "--config_override",
        action="append",
        default=[],
        help="field.path=value, repeatable",
    )
    cli.add_debug_argument(parser)
    return parser


def _inference_unmatched(report, mapped, backbone_only: bool) -> List[str]:
    """Names used at inference that the conversion left unmapped."""
    items = ("encoder",) if backbone_only else deeplab2_mapping.INFERENCE_ITEMS
    unused = [p for p in report.unused if p.split("/")[0] in items]
    if report.layout in (
        deeplab2_mapping.LAYOUT_MODEL_GARDEN,
        deeplab2_mapping.LAYOUT_KERAS_WEIGHTS,
    ):
        unused = list(report.unused)
    missing = set(report.missing)
    unfilled = [
        f"{m.ours} (no DeepLab2 value)"
        for m in mapped
        if m.variable.name in missing and m.item in items
    ]
    return sorted(unused) + sorted(unfilled)


def convert(
    config_file: str,
    deeplab2_checkpoint: str,
    output_dir: str,
    *,
    backbone_only: bool = False,
    skip_class_heads: bool = False,
    overrides=(),
) -> dict:
    """Converts; returns the report dict (also written to the output).

    Raises:
      ConfigError: a bad config.
      ModelFileError: ``deeplab2_checkpoint`` is missing, not DeepLab2's,
        or does not fit the config's model.
      OutputPathError: ``output_dir`` cannot be written.
    """
    atomic.check_output_dir(output_dir)
    config = load_config(config_file, list(overrides))
    # The DeepLab2 weights replace the backbone's pretrained_weights.
    config.model_options.backbone.ClearField("pretrained_weights")
    model = build_model(config)
    images = tf.zeros([1, BUILD_CROP, BUILD_CROP, 3])
    if backbone_only:
        model.pixel_encoder(images / 127.5 - 1.0, training=False)
        items = {common.CKPT_ENCODER: model.pixel_encoder}
    else:
        model(images, training=False)
        model(images, training=True)
        items = model.checkpoint_items
    exclude = CLASS_HEAD_PATTERNS if skip_class_heads else ()
    try:
        report = deeplab2_mapping.restore_deeplab2(
            items, deeplab2_checkpoint, exclude=exclude, what="--deeplab2_checkpoint"
        )
    except (FileNotFoundError, ValueError) as e:
        raise ModelFileError(
            f"{e} Fix: pass the DeepLab2 checkpoint of this config's model "
            "(--backbone_only for an ImageNet backbone checkpoint, "
            "--skip_class_heads for another class set)."
        ) from e
    mapped = deeplab2_mapping.map_items(items)
    unmatched = _inference_unmatched(report, mapped, backbone_only)
    by_name = {m.variable.name: m.ours for m in mapped}
    result = {
        "deeplab2_checkpoint": report.checkpoint,
        "layout": report.layout,
        "config_file": config_file,
        "backbone_only": backbone_only,
        "skip_class_heads": skip_class_heads,
        # None when inference weights were left unmapped (nothing written).
        "checkpoint": os.path.join(output_dir, CHECKPOINT_NAME)
        if not unmatched
        else None,
        "restored": len(report.restored),
        "left_at_init": {
            "no_deeplab2_value": sorted(by_name.get(n, n) for n in report.missing),
            "class_heads_excluded": sorted(by_name.get(n, n) for n in report.excluded),
        },
        "skipped_non_model": len(report.skipped),
        "skipped_examples": list(report.skipped[:10]),
        "deeplab2_unused": list(report.unused),
        "unbuilt_items": list(report.unbuilt_items),
        "inference_unmatched": unmatched,
        "ok": not unmatched,
    }
    tf.io.gfile.makedirs(output_dir)
    scratch = os.path.join(output_dir, f".convert-{uuid.uuid4().hex}")
    tf.io.gfile.makedirs(scratch)
    try:
        # A conversion that left inference weights unmapped writes its report
        # only: no checkpoint that would load as if it were whole.
        if result["ok"]:
            tf.train.Checkpoint(**items).write(os.path.join(scratch, CHECKPOINT_NAME))
            with open(os.path.join(scratch, "checkpoint"), "w") as f:
                f.write(
                    f'model_checkpoint_path: "{CHECKPOINT_NAME}"\n'
                    f'all_model_checkpoint_paths: "{CHECKPOINT_NAME}"\n'
                )
        with open(os.path.join(scratch, REPORT_FILE), "w") as f:
            json.dump(result, f, indent=1)
        names = sorted(os.listdir(scratch))
        # Checkpoint files first, the state file and the report last.
        names.sort(key=lambda n: (n in ("checkpoint", REPORT_FILE), n))
        for name in names:
            os.replace(os.path.join(scratch, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return cli.run_parsed(_convert, args)


def _convert(args: argparse.Namespace) -> int:
    result = convert(
        args.config_file,
        args.deeplab2_checkpoint,
        args.output_dir,
        backbone_only=args.backbone_only,
        skip_class_heads=args.skip_class_heads,
        overrides=args.config_override,
    )
    left = result["left_at_init"]
    print(
        f"[convert_deeplab2] {result['layout']}: restored {result['restored']} "
        f"variables; left at init: {len(left['no_deeplab2_value'])} without a "
        f"DeepLab2 value (ReMaX heads), {len(left['class_heads_excluded'])} class-head "
        f"variables; skipped {result['skipped_non_model']} optimizer/step entries; "
        f"wrote {result['checkpoint'] + ' and ' if result['ok'] else ''}"
        f"{os.path.join(args.output_dir, REPORT_FILE)}",
        flush=True,
    )
    if result["inference_unmatched"]:
        print(
            "[convert_deeplab2] ERROR: inference weights left unmapped "
            f"({len(result['inference_unmatched'])}); no checkpoint was written "
            "(the report lists them). Fix: use the --config_file of the model "
            "that DeepLab2 checkpoint belongs to:",
            file=sys.stderr,
        )
        for name in result["inference_unmatched"]:
            print(f"  {name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

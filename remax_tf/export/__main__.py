"""Command line: export a trained checkpoint (docs/export.md).

    remax-export --config_file configs/demo/shapes_remax.textproto \\
        --checkpoint runs/demo/model --output_dir exports/demo \\
        --format saved_model --format tflite --quantize none --quantize int8

(or ``python -m remax_tf.export ...``). Prints one JSON object with the
written paths and the TFLite op lists.

The export is written whole or not at all (``remax_tf.atomic``). An expected
failure (no checkpoint, a checkpoint of another config, an output folder
that cannot be written, an unset ``${VAR}`` that int8 calibration needs)
prints one ``error: ...`` line and exits with status 1; ``--debug`` (or
``REMAX_TF_DEBUG=1``) also prints its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional
from typing import Sequence

from remax_tf import cli

# TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at its import by the modules below.
cli.quiet_tensorflow()

from remax_tf import atomic  # noqa: E402
from remax_tf.config import load_config  # noqa: E402
from remax_tf.export.exporter import export_checkpoint  # noqa: E402
from remax_tf.export.options import DEFAULT_CALIBRATION_STEPS  # noqa: E402
from remax_tf.export.options import FORMATS  # noqa: E402
from remax_tf.export.options import QUANTIZE_MODES  # noqa: E402
from remax_tf.export.options import XNNPACK_FLOAT_OPS  # noqa: E402


def _split(values: Optional[Sequence[str]]) -> list:
    """Repeated and comma-separated flag values, in order."""
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="remax-export",
        description="Exports a training checkpoint as a SavedModel and TFLite files "
        "(docs/export.md). Prints one JSON object with the written paths and the "
        "TFLite op lists.",
    )
    parser.add_argument(
        "--config_file",
        required=True,
        help="Experiment textproto that trained the checkpoint "
        "(configs/<dataset>/<name>.textproto also names a shipped config).",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="A ckpt-N prefix, a directory holding a 'checkpoint' file (its latest "
        "ckpt-N), or the trainer's --model_dir (its <experiment_name>/).",
    )
    parser.add_argument(
        "--output_dir",
        required=True,
        help="Where saved_model/, tflite/ and metadata.json are written (created).",
    )
    parser.add_argument(
        "--format",
        action="append",
        help=f"{' | '.join(FORMATS)} (repeat or comma-separate); default: "
        "saved_model, plus tflite for MobileNetV3 backbones.",
    )
    parser.add_argument(
        "--quantize",
        action="append",
        help=f"TFLite: {' | '.join(QUANTIZE_MODES)} (repeat or comma-separate); "
        "default none (fp32).",
    )
    parser.add_argument(
        "--calibration_steps",
        type=int,
        default=DEFAULT_CALIBRATION_STEPS,
        help="int8: training images used to calibrate.",
    )
    parser.add_argument(
        "--input_size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="TFLite: fixed input image size; default the eval crop size.",
    )
    parser.add_argument(
        "--float_scopes",
        action="append",
        help="int8: layer name scopes kept in float (selective quantisation), "
        "e.g. kmax_transformer_decoder/,predictor/ (the k-means path).",
    )
    parser.add_argument(
        "--float_ops",
        action="append",
        help="int8: TFLite op types kept in float (comma-separated, or 'none' to "
        "quantise every op with an int8 kernel); default "
        f"{','.join(XNNPACK_FLOAT_OPS)}: those XNNPACK cannot run in int8.",
    )
    parser.add_argument(
        "--config_override",
        action="append",
        default=[],
        help="field.path=value, applied after parsing (repeatable).",
    )
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    args.format = _split(args.format) or None
    args.quantize = _split(args.quantize) or ["none"]
    args.float_scopes = _split(args.float_scopes)
    float_ops = _split(args.float_ops)
    args.float_ops = (
        XNNPACK_FLOAT_OPS
        if args.float_ops is None
        else tuple(op for op in float_ops if op != "none")
    )
    for name in args.format or ():
        if name not in FORMATS:
            parser.error(f"--format {name!r}: use one of {', '.join(FORMATS)}.")
    for mode in args.quantize:
        if mode not in QUANTIZE_MODES:
            parser.error(
                f"--quantize {mode!r}: use one of {', '.join(QUANTIZE_MODES)}."
            )
    if args.calibration_steps <= 0:
        parser.error("--calibration_steps must be positive.")
    return args


def _load_config(args: argparse.Namespace):
    """The config, with every unset ``${VAR}`` left as it is: data paths do
    not matter unless int8 calibration reads the training files, which then
    names the unset variable (``exporter.training_images``)."""
    return load_config(
        args.config_file,
        args.config_override,
        validate=False,
        unset_placeholders="keep",
    )


def _export(args: argparse.Namespace) -> int:
    # Refused before the model is built.
    atomic.check_output_dir(args.output_dir)
    result = export_checkpoint(
        _load_config(args),
        args.checkpoint,
        args.output_dir,
        formats=args.format,
        quantize=args.quantize,
        tflite_input_size=args.input_size,
        calibration_steps=args.calibration_steps,
        float_scopes=args.float_scopes,
        float_ops=args.float_ops,
    )
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return cli.run_parsed(_export, args)


def run() -> None:
    """Console script ``remax-export``."""
    sys.exit(main())


if __name__ == "__main__":
    run()

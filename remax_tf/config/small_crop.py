"""Trying any config at a small crop, in one line.

The shipped COCO, Cityscapes and ADE20K configs train at 641-1281 pixels with
batch 16-64. To try one on a laptop (build it, run a few steps, check a data
pipeline), one override set scales the crop, the resize range and the batch:

    from remax_tf.config import load_config, small_crop_overrides
    config = load_config(path, small_crop_overrides(129))

    remax-train --config_file configs/coco/remax_t.textproto ... \\
        $(python -m remax_tf.config.small_crop 129)

The model is unchanged (same layers and parameters; kMaX's relative
positions follow the crop). Each flag printed by the command line is one
shell word (no spaces, no brackets), so the command substitution needs no
quoting. The functions live in :mod:`remax_tf.config.scaled_down` (so that
the package, which exports them, does not import this command).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional
from typing import Sequence

from remax_tf.config.scaled_down import DEFAULT_BATCH_SIZE
from remax_tf.config.scaled_down import DEFAULT_CROP
from remax_tf.config.scaled_down import crop_overrides
from remax_tf.config.scaled_down import small_crop_overrides

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CROP",
    "crop_overrides",
    "main",
    "small_crop_overrides",
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m remax_tf.config.small_crop",
        description="Prints the --config_override flags that scale a config down "
        "to a small crop, for $(...) substitution into remax-train, remax-export "
        "or remax-predict.",
    )
    parser.add_argument(
        "crop", type=int, nargs="?", default=DEFAULT_CROP, help="crop size (pixels)"
    )
    parser.add_argument(
        "--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="training batch"
    )
    args = parser.parse_args(argv)
    print(
        " ".join(
            f"--config_override={o}"
            for o in small_crop_overrides(args.crop, args.batch_size)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Override sets that scale any config down to a small crop.

The shipped COCO, Cityscapes and ADE20K configs train at 641-1281 pixels with
batch 16-64; :func:`small_crop_overrides` scales the crop, the resize range
and the batch, so that one can be tried on a laptop (``remax_tf.config``
exports it; ``python -m remax_tf.config.small_crop`` prints it as flags).
The model is unchanged (same layers and parameters; kMaX's relative
positions follow the crop).
"""

from __future__ import annotations

from typing import List

DEFAULT_CROP = 129
DEFAULT_BATCH_SIZE = 2


def crop_overrides(crop: int) -> List[str]:
    """``--config_override`` values: train and eval crops of ``crop`` x
    ``crop``, images resized to it."""
    overrides = []
    for options in ("train_dataset_options", "eval_dataset_options"):
        overrides += [
            f"{options}.crop_size={crop},{crop}",
            f"{options}.min_resize_value={crop}",
            f"{options}.max_resize_value={crop}",
        ]
    return overrides


def small_crop_overrides(
    crop: int = DEFAULT_CROP, batch_size: int = DEFAULT_BATCH_SIZE
) -> List[str]:
    """:func:`crop_overrides` and a training batch of ``batch_size``."""
    return crop_overrides(crop) + [f"train_dataset_options.batch_size={batch_size}"]

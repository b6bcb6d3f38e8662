"""Ground-truth preprocessing for the kMaX / ReMaX losses.

Its input is the per-sample targets of ``remax_tf.data.sample_targets`` (made
by the input pipeline at crop resolution).

Mirrors DeepLab2's ``MaXDeepLabLoss._pre_process_ground_truth``
(model/loss/max_deeplab_loss.py): the crop-resolution labels are strided
down to the model output resolution, thing instances (``thing_id_mask``) and
stuff classes (from the semantic map) become one list of
``max_thing_id + num_stuff`` ground-truth masks, and masks whose area vanishes
at the output resolution are marked void. ReMaX additionally needs the
per-pixel semantic class in the model's things-then-stuff order (ReClass's
``S`` of Eq. 3, the ground-truth ReMask ablation and the per-stage semantic
loss), which is computed here too.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping
from typing import NamedTuple
from typing import Sequence
from typing import Tuple

import tensorflow as tf

from remax_tf import common
from remax_tf.data.datasets import DatasetDescriptor


def strided_downsample(tensor: tf.Tensor, target_size: Sequence[int]) -> tf.Tensor:
    """Keeps every s-th pixel of [B, H, W, ...] so that it becomes [B, h, w, ...].

    DeepLab2's model/utils.py ``strided_downsample``: the stride is
    (H - 1) / (h - 1), which must be an integer and equal on both axes (crops
    of the form k * stride + 1, e.g. 641 -> 161 at stride 4).
    """
    height, width = tensor.shape[1], tensor.shape[2]
    target_height, target_width = int(target_size[0]), int(target_size[1])
    if (height, width) == (target_height, target_width):
        return tensor
    if (
        height is None
        or width is None
        or target_height < 2
        or target_width < 2
        or (height - 1) % (target_height - 1)
        or (width - 1) % (target_width - 1)
        or (height - 1) // (target_height - 1) != (width - 1) // (target_width - 1)
    ):
        raise ValueError(
            f"cannot stride-downsample a label of spatial size {height}x{width} to "
            f"the model output {target_height}x{target_width}: kMaX needs "
            "(H - 1) / (h - 1) == (W - 1) / (w - 1) to be an integer (crop sizes "
            "of the form k * output_stride + 1, e.g. 641 or 1281)."
        )
    stride = (height - 1) // (target_height - 1)
    return tensor[:, ::stride, ::stride]


@dataclasses.dataclass(frozen=True)
class ClassLayout:
    """How dataset semantic ids map onto the model's class channels.

    Attributes:
      thing_stuff_class_ids: Dataset ids in model order: things, then stuff.
      num_thing_classes: How many of them are things.
      ignore_label: Dataset id of void pixels.
      num_classes: DeepLab2's ``num_classes`` (channels of kMaX's auxiliary
        semantic head, indexed by dataset id).
    """

    thing_stuff_class_ids: Tuple[int, ...]
    num_thing_classes: int
    ignore_label: int
    num_classes: int

    @classmethod
    def from_descriptor(cls, descriptor: DatasetDescriptor) -> "ClassLayout":
        return cls(
            thing_stuff_class_ids=tuple(descriptor.thing_stuff_class_ids),
            num_thing_classes=len(descriptor.thing_class_ids),
            ignore_label=descriptor.ignore_label,
            num_classes=descriptor.num_classes,
        )

    @property
    def num_thing_stuff_classes(self) -> int:
        return len(self.thing_stuff_class_ids)

    @property
    def num_stuff_classes(self) -> int:
        return self.num_thing_stuff_classes - self.num_thing_classes

    def model_index_table(self) -> Tuple[int, ...]:
        """Dataset id -> things-then-stuff index; -1 for void and unknown ids."""
        size = max(self.num_classes, self.ignore_label + 1, *self.thing_stuff_class_ids)
        table = [-1] * (size + 1)
        for index, class_id in enumerate(self.thing_stuff_class_ids):
            table[class_id] = index
        return tuple(table)


class GroundTruth(NamedTuple):
    """Ground truth at the model output resolution, pixels flattened (P = h*w).

    G = max_thing_id + num_stuff ground-truth masks (things first, then one
    mask per stuff class); NC = thing + stuff classes in model order.
    """

    # [B, P] 1.0 where the semantic label is not the ignore label.
    pixel_non_void: tf.Tensor
    # [B, P] 1.0 on non-crowd thing instances.
    pixel_thing: tf.Tensor
    # [B, P, G] one-hot mask id (all zero on void and crowd pixels).
    pixel_mask_one_hot: tf.Tensor
    # [B, P] int32 class in model order, -1 on void.
    pixel_class_index: tf.Tensor
    # [B, P, NC] one-hot of pixel_class_index (ReClass's S; void all zero).
    pixel_class_one_hot: tf.Tensor
    # [B, P] float32 per-pixel semantic loss weight (1.0 where not given).
    pixel_semantic_weight: tf.Tensor
    # [B, P] output_area / area of the pixel's mask (area floored at 1).
    inverse_pixel_mask_area: tf.Tensor
    # [B, G] 1.0 for masks that exist at the output resolution.
    mask_non_void: tf.Tensor
    # [B, G] float32 pixel count of each mask.
    mask_area: tf.Tensor
    # [B, G, NC] one-hot class of each mask (all zero for void masks).
    mask_class_one_hot: tf.Tensor


def _require(y_true: Mapping[str, tf.Tensor], key: str, rank: int) -> tf.Tensor:
    if key not in y_true:
        raise KeyError(
            f"ground truth dict lacks {key!r} (present: {sorted(y_true)}); the kMaX "
            "loss needs DeepLab2's kMaX sample dict (thing_id_mask_annotations)."
        )
    tensor = tf.convert_to_tensor(y_true[key])
    if tensor.shape.rank != rank:
        raise ValueError(
            f"ground truth {key!r} must have rank {rank}, got shape {tensor.shape}."
        )
    return tensor


def build_ground_truth(
    y_true: Mapping[str, tf.Tensor],
    output_size: Sequence[int],
    layout: ClassLayout,
) -> GroundTruth:
    """DeepLab2's ``_pre_process_ground_truth`` plus the ReMaX class maps.

    Args:
      y_true: Sample dict with GT_SEMANTIC_KEY, GT_THING_ID_MASK_KEY [B, H, W]
        and GT_THING_ID_CLASS_KEY [B, max_thing_id]; SEMANTIC_LOSS_WEIGHT_KEY
        [B, H, W] is optional (ones when absent).
      output_size: (h, w) of the mask logits.
      layout: The dataset's class layout.
    """
    height, width = int(output_size[0]), int(output_size[1])
    num_pixels = height * width
    semantic = _require(y_true, common.GT_SEMANTIC_KEY, 3)
    thing_id = _require(y_true, common.GT_THING_ID_MASK_KEY, 3)
    thing_class = _require(y_true, common.GT_THING_ID_CLASS_KEY, 2)
    max_thing_id = thing_class.shape[-1]
    if max_thing_id is None:
        raise ValueError(
            f"ground truth {common.GT_THING_ID_CLASS_KEY!r} needs a static last "
            f"dimension (max_thing_id), got shape {thing_class.shape}."
        )
    batch = tf.shape(semantic)[0]
    num_classes = layout.num_thing_stuff_classes
    num_things = layout.num_thing_classes
    table = tf.constant(layout.model_index_table(), tf.int32)

    def to_model_index(ids: tf.Tensor) -> tf.Tensor:
        ids = tf.cast(ids, tf.int32)
        inside = tf.logical_and(ids >= 0, ids < table.shape[0])
        return tf.where(
            inside, tf.gather(table, tf.clip_by_value(ids, 0, table.shape[0] - 1)), -1
        )

    semantic = tf.reshape(
        strided_downsample(tf.cast(semantic, tf.int32), (height, width)),
        [batch, num_pixels],
    )
    thing_id = tf.reshape(
        strided_downsample(tf.cast(thing_id, tf.int32), (height, width)),
        [batch, num_pixels],
    )
    if common.SEMANTIC_LOSS_WEIGHT_KEY in y_true:
        weight = strided_downsample(
            tf.cast(y_true[common.SEMANTIC_LOSS_WEIGHT_KEY], tf.float32),
            (height, width),
        )
        weight = tf.reshape(weight, [batch, num_pixels])
    else:
        weight = tf.ones([batch, num_pixels])

    pixel_non_void = tf.cast(tf.not_equal(semantic, layout.ignore_label), tf.float32)
    pixel_class_index = tf.where(pixel_non_void > 0, to_model_index(semantic), -1)
    pixel_class_one_hot = tf.one_hot(pixel_class_index, num_classes)
    # Stuff masks are the stuff channels of the semantic one-hot.
    pixel_stuff_one_hot = pixel_class_one_hot[:, :, num_things:]
    pixel_thing = tf.cast(tf.not_equal(thing_id, -1), tf.float32)
    pixel_mask_one_hot = tf.concat(
        [tf.one_hot(thing_id, max_thing_id), pixel_stuff_one_hot], axis=-1
    )

    mask_area = tf.reduce_sum(pixel_mask_one_hot, axis=1)  # [B, G]
    # A mask can vanish when strided down (e.g. a one-pixel object); it then
    # counts as void, as in DeepLab2.
    mask_present = mask_area > 0.5
    pixel_mask_area = tf.einsum("bpg,bg->bp", pixel_mask_one_hot, mask_area)
    inverse_pixel_mask_area = float(num_pixels) / tf.maximum(pixel_mask_area, 1.0)

    stuff_index = tf.range(num_things, num_classes, dtype=tf.int32)
    mask_class_index = tf.concat(
        [
            to_model_index(thing_class),
            tf.tile(stuff_index[None, :], [batch, 1]),
        ],
        axis=1,
    )
    mask_class_index = tf.where(mask_present, mask_class_index, -1)
    return GroundTruth(
        pixel_non_void=pixel_non_void,
        pixel_thing=pixel_thing,
        pixel_mask_one_hot=pixel_mask_one_hot,
        pixel_class_index=pixel_class_index,
        pixel_class_one_hot=pixel_class_one_hot,
        pixel_semantic_weight=weight,
        inverse_pixel_mask_area=inverse_pixel_mask_area,
        mask_non_void=tf.cast(mask_class_index >= 0, tf.float32),
        mask_area=mask_area,
        mask_class_one_hot=tf.one_hot(mask_class_index, num_classes),
    )

"""Partial restore of pretrained pixel-encoder weights from a TF2 checkpoint.

A thin use of :mod:`remax_tf.model.checkpoint_restore`. Two checkpoint layouts
are accepted, told apart by their keys:

* a whole-model checkpoint whose root holds the encoder under ``encoder``
  (DeepLab2's ``checkpoint_items`` name, ``remax_tf.common.CKPT_ENCODER``):
  ``tf.train.Checkpoint(encoder=encoder, ...)``, e.g. a remax_tf training
  checkpoint;
* the encoder itself as the root: ``tf.train.Checkpoint(encoder_model)`` or
  ``encoder_model.save_weights(prefix)``;
* any DeepLab2 checkpoint holding the encoder
  (:mod:`remax_tf.model.deeplab2_mapping`): an ImageNet backbone checkpoint
  (root child ``encoder``), the Model Garden layout (``backbone/_encoder``),
  DeepLab2's ConvNeXt Keras weights (the encoder as the root), or a whole
  kMaX model checkpoint; mapped by DeepLab2's names.
"""

from __future__ import annotations

import dataclasses

import tf_keras

from remax_tf import common
from remax_tf.model import deeplab2_mapping
from remax_tf.model.checkpoint_restore import RestoreReport
from remax_tf.model.checkpoint_restore import resolve_checkpoint_prefix
from remax_tf.model.checkpoint_restore import restore_items
from remax_tf.model.checkpoint_restore import restore_root
from remax_tf.model.checkpoint_restore import root_children

_WHAT = "pretrained_weights"


def load_pretrained_weights(model: tf_keras.Model, path: str) -> RestoreReport:
    """Restores the variables of ``model`` found in the checkpoint at ``path``.

    Args:
      model: A built encoder.
      path: A checkpoint prefix, or a directory whose latest checkpoint is used.

    Returns:
      The :class:`~remax_tf.model.checkpoint_restore.RestoreReport`, with
      ``layout`` ``'encoder_item'``, ``'encoder_root'`` or a DeepLab2 layout
      (:data:`remax_tf.model.deeplab2_mapping.LAYOUTS`).

    Raises:
      FileNotFoundError: If ``path`` is not a checkpoint.
      ValueError: If no variable of ``model`` is in the checkpoint, or matched
        variables have other shapes (a checkpoint of another backbone); nothing
        is restored then.
    """
    prefix = resolve_checkpoint_prefix(path, _WHAT)
    if deeplab2_mapping.detect_layout(prefix):
        return deeplab2_mapping.restore_deeplab2(
            {common.CKPT_ENCODER: model}, prefix, what=_WHAT
        )
    if common.CKPT_ENCODER in root_children(prefix):
        report = restore_items({common.CKPT_ENCODER: model}, prefix, what=_WHAT)
        return dataclasses.replace(report, layout="encoder_item")
    report = restore_root(model, prefix, what=_WHAT)
    return dataclasses.replace(report, layout="encoder_root")

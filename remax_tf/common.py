"""The vocabulary of remax_tf: every dict key shared by data, model, losses,
evaluation and export lives here, so that they agree by construction.

Keys that DeepLab2 also uses keep DeepLab2's string values, so sample dicts and
prediction dicts look the same in both code bases.

Conventions (shapes use B batch, H/W input size, h/w model output size,
NQ mask slots, NC = number of thing + stuff classes, void excluded):

* Class order inside the model and losses is DeepLab2's kMaX order: thing
  classes first, then stuff classes, then void (the last channel of the class
  logits). ``DatasetDescriptor.thing_stuff_class_ids`` maps that order back to
  dataset semantic ids.
* Images enter the model as float32 in [0, 255]; the model normalises them.
"""

# ---------------------------------------------------------------------------
# TFRecord keys (DeepLab2 format: DeepLab2's data/data_utils.py, create_tfexample).
KEY_ENCODED_IMAGE = "image/encoded"
KEY_IMAGE_FILENAME = "image/filename"
KEY_IMAGE_FORMAT = "image/format"
KEY_IMAGE_HEIGHT = "image/height"
KEY_IMAGE_WIDTH = "image/width"
KEY_IMAGE_CHANNELS = "image/channels"
KEY_ENCODED_LABEL = "image/segmentation/class/encoded"
KEY_LABEL_FORMAT = "image/segmentation/class/format"

# ---------------------------------------------------------------------------
# Sample (input pipeline output) keys.
IMAGE = "image"  # [B, H, W, 3] float32 in [0, 255]
IMAGE_NAME = "image_name"  # [B] string
RESIZED_IMAGE = "resized_image"  # eval: image after resize, before pad
RESIZED_SIZE = "resized_size"  # eval: [B, 2] (height, width) after resize, before pad
GT_PANOPTIC_KEY = "panoptic_gt"  # [B, H, W] int32, sem * divisor + inst
GT_SEMANTIC_KEY = "semantic_gt"  # [B, H, W] int32 dataset semantic ids
GT_IS_CROWD = "is_crowd_gt"  # [B, H, W] int32 0/1
GT_THING_ID_MASK_KEY = "thing_id_mask_gt"  # [B, H, W] int32, -1 = no thing
GT_THING_ID_CLASS_KEY = "thing_id_class_gt"  # [B, max_thing_id] int32, -1 pad
SEMANTIC_LOSS_WEIGHT_KEY = "semantic_loss_weight"  # [B, H, W] float32
GT_PANOPTIC_RAW = "panoptic_raw"  # eval: label at the original size
GT_SEMANTIC_RAW = "semantic_raw"
GT_IS_CROWD_RAW = "is_crowd_raw"
GT_SIZE_RAW = "size_raw"  # [B, 2] original (height, width)

# ---------------------------------------------------------------------------
# Prediction keys.
PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY = "pixel_space_normalized_feature"
PRED_PIXEL_SPACE_MASK_LOGITS_KEY = "pixel_space_mask_logits"  # [B,h,w,NQ]
PRED_TRANSFORMER_CLASS_LOGITS_KEY = "transformer_class_logits"  # [B,NQ,NC+1]
PRED_SEMANTIC_LOGITS_KEY = "semantic_logits"  # kMaX auxiliary semantic head
PRED_AUXILIARY_OUTPUTS = "auxiliary_outputs_pred"  # tuple of per-layer dicts
# ReMaX additions inside each auxiliary (per kMaX layer) output dict.
# The pixel feature the layer's k-means cross-attention uses as key (x_sem).
PRED_KEY_FEATURE_KEY = "remax_key_feature"
# m_sem of Eq. (1): ReMaX semantic-head logits at the mask-logit resolution,
# NC channels in thing-then-stuff order.
PRED_REMAX_SEMANTIC_LOGITS_KEY = "remax_semantic_logits"
# m_pan_hat of Eq. (2): the layer's mask logits relaxed by the model's ReMask
# layer (training only, relaxed layers only); PRED_PIXEL_SPACE_MASK_LOGITS_KEY
# keeps the raw m_pan (ReClass's y_m of Eq. 3 reads it).
PRED_RELAXED_MASK_LOGITS_KEY = "remax_relaxed_mask_logits"

# Post-processed outputs (input resolution).
PRED_PANOPTIC_KEY = "panoptic_pred"
PRED_SEMANTIC_KEY = "semantic_pred"
PRED_INSTANCE_KEY = "instance_pred"
PRED_INSTANCE_SCORES_KEY = "instance_scores"
# Class confidence of the slot each pixel belongs to (DeepLab2's key).
PRED_SEMANTIC_SCORES_KEY = "semantic_scores"

# ---------------------------------------------------------------------------
# Loss names (also the TensorBoard tags).
PQ_STYLE_LOSS_CLASS_TERM = "pq_style_loss_class_term"
PQ_STYLE_LOSS_MASK_DICE_TERM = "pq_style_loss_mask_dice_term"
MASK_ID_CROSS_ENTROPY_LOSS = "mask_id_cross_entropy_loss"
INSTANCE_DISCRIMINATION_LOSS = "instance_discrimination_loss"
SEMANTIC_LOSS = "semantic_loss"
REMAX_SEMANTIC_LOSS = "remax_semantic_loss"
TOTAL_LOSS = "total_loss"

# ---------------------------------------------------------------------------
# Checkpoint item names (DeepLab2's, so checkpoints map one to one).
CKPT_ENCODER = "encoder"
CKPT_PIXEL_DECODER = "pixel_decoder"
CKPT_TRANSFORMER_DECODER = "transformer_decoder"
CKPT_SEMANTIC_LAST_LAYER = "semantic_last_layer"
CKPT_PIXEL_SPACE_HEAD = "pixel_space_head"
CKPT_TRANSFORMER_MASK_HEAD = "transformer_mask_head"
CKPT_TRANSFORMER_CLASS_HEAD = "transformer_class_head"
CKPT_PIXEL_SPACE_FEATURE_BATCH_NORM = "pixel_space_feature_batch_norm"
CKPT_PIXEL_SPACE_MASK_BATCH_NORM = "pixel_space_mask_batch_norm"
CKPT_SEMANTIC_DECODER = "semantic_decoder"
CKPT_SEMANTIC_HEAD_WITHOUT_LAST_LAYER = "semantic_head_without_last_layer"
# remax_tf: ReMaX semantic head of relaxed kMaX layer i is saved as
# f"{CKPT_REMAX_SEMANTIC_HEAD_PREFIX}{i}".
CKPT_REMAX_SEMANTIC_HEAD_PREFIX = "remax_semantic_head_"

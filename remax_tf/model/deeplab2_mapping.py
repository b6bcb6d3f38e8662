"""DeepLab2 checkpoints in remax_tf models: layouts, name rules, value transforms.

DeepLab2 (``google-research/deeplab2``) and remax_tf build the same kMaX-DeepLab
layers, but the variables sit at other object paths, so a DeepLab2 checkpoint
cannot be read by ``tf.train.Checkpoint`` matching. This module maps every
variable of a built remax_tf model to the DeepLab2 object path of the same
weight with explicit rules per component (matching by order does not work:
only 501 of the 1,184 COCO R50 variables line up by position):

* **encoder**, per backbone family. Our ResNet-50, ConvNeXt and MobileNetV3
  are functional Keras models (checkpointed as ``layer_with_weights-N``), so
  their rules read the Keras *layer name* (``stage2_block1_conv1``) and give
  DeepLab2's nesting (``_stage2/_block1/_conv1_bn_act/_conv``); our
  Axial-ResNet-50 is subclassed like DeepLab2's and differs in list names
  (``_stages/0/_blocks/0`` vs ``_stage2/_block1``);
* **pixel decoder**: ``_stages/i/_blocks/j`` vs ``_stages/i/_block{j+1}``,
  ResizedFuse ``_projections/k`` vs ``_resized_conv_bn{k+1}``;
* **transformer decoder**: our layers are per stage (``_layers_per_stage/s/b``),
  DeepLab2's a flat list (``_kmax_decoder/k/_block1_transformer``) in the same
  order, so ``k`` needs the blocks per stage (read from the built decoder,
  i.e. from the config); the k-means cross-attention's BNs sit one level
  deeper in DeepLab2 (``_memory_attention``), the auxiliary predictor is
  ``_auxiliary_clustering_predictor``;
* **heads and the auxiliary semantic decoder** drop DeepLab2's
  ``_conv1_bn_act`` wrapper of the depthwise-separable convs, and name ASPP's
  branches ``_atrous_convs/k`` (DeepLab2 ``_aspp_conv{k+1}/_conv_bn_act``).

Two ConvNeXt weights also need a value transform (:data:`TRANSFORMS`):
DeepLab2's depthwise conv is a ``Conv2D(groups=C)`` (kernel ``[7, 7, 1, C]``,
ours a ``DepthwiseConv2D``, ``[7, 7, C, 1]``) and its layer scale is a
``[1, 1, 1, C]`` weight (ours ``[C]``).

DeepLab2 checkpoint layouts (:func:`detect_layout`):

* ``deeplab2_model``: its trainer's ``tf.train.Checkpoint(global_step,
  optimizer, **model.checkpoint_items)`` (a model-zoo checkpoint);
* ``deeplab2_encoder``: an ImageNet backbone checkpoint whose root holds the
  encoder under ``encoder`` (ResNet-50, Axial-ResNet-50, MobileNetV3);
* ``deeplab2_model_garden``: the TF Model Garden layout
  ``backbone/_encoder/...`` that DeepLab2's ``initial_checkpoint`` accepts;
* ``deeplab2_keras_weights``: ``encoder.save_weights(prefix)`` (the encoder
  is the root): DeepLab2 loads ConvNeXt ``pretrained_weights`` this way.

:func:`restore_deeplab2` restores a built model (or its checkpoint items) from
any of them and reports what it restored, what the checkpoint holds that is
not the model (optimizer slots, ``global_step``), and what kept its initial
value (ReMaX's semantic heads, which DeepLab2 does not have; class heads
excluded by pattern when the class set differs).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
from typing import Callable
from typing import Dict
from typing import Iterable
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np
import tensorflow as tf

from remax_tf import common
from remax_tf.model.checkpoint_report import RestoreReport
from remax_tf.model.checkpoint_report import resolve_checkpoint_prefix

_LOGGER = logging.getLogger(__name__)

_ATTRIBUTES_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_OPTIMIZER_SLOT = "/.OPTIMIZER_SLOT/"
# Root children of DeepLab2 training checkpoints that are not the model.
NON_MODEL_ROOT_CHILDREN = (
    "optimizer",
    "backbone_optimizer",
    "global_step",
    "save_counter",
)
# DeepLab2 runner_utils: a Model Garden checkpoint holds the encoder here.
MODEL_GARDEN_ENCODER_PREFIX = "backbone/_encoder/"

LAYOUT_MODEL = "deeplab2_model"
LAYOUT_ENCODER = "deeplab2_encoder"
LAYOUT_MODEL_GARDEN = "deeplab2_model_garden"
LAYOUT_KERAS_WEIGHTS = "deeplab2_keras_weights"
LAYOUTS = (LAYOUT_MODEL, LAYOUT_ENCODER, LAYOUT_MODEL_GARDEN, LAYOUT_KERAS_WEIGHTS)

# Checkpoint items whose variables are used at inference (the rest, DeepLab2's
# auxiliary semantic branch, is training-only).
INFERENCE_ITEMS = (
    common.CKPT_ENCODER,
    common.CKPT_PIXEL_DECODER,
    common.CKPT_TRANSFORMER_DECODER,
    common.CKPT_PIXEL_SPACE_HEAD,
    common.CKPT_TRANSFORMER_MASK_HEAD,
    common.CKPT_TRANSFORMER_CLASS_HEAD,
    common.CKPT_PIXEL_SPACE_FEATURE_BATCH_NORM,
    common.CKPT_PIXEL_SPACE_MASK_BATCH_NORM,
)


# ----------------------------------------------------------------------------
# Value transforms (DeepLab2 value -> remax_tf value).
def _grouped_to_depthwise_kernel(value: np.ndarray) -> np.ndarray:
    """``Conv2D(groups=C)`` kernel [kh, kw, 1, C] -> ``DepthwiseConv2D`` [kh, kw, C, 1]."""
    return np.transpose(value, (0, 1, 3, 2))


def _layer_scale_to_vector(value: np.ndarray) -> np.ndarray:
    """DeepLab2's ConvNeXt layer scale [1, 1, 1, C] -> ours [C]."""
    return np.reshape(value, (-1,))


TRANSFORMS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "grouped_to_depthwise_kernel": _grouped_to_depthwise_kernel,
    "layer_scale_to_vector": _layer_scale_to_vector,
}


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one remax_tf variable's value is in a DeepLab2 checkpoint.

    Attributes:
      path: DeepLab2 object path, relative to the model checkpoint's root
        (``'encoder/_stage2/_block1/_conv1_bn_act/_conv/kernel'``).
      transform: Key of :data:`TRANSFORMS`, or None (the value as is).
    """

    path: str
    transform: Optional[str] = None


# ----------------------------------------------------------------------------
# Name rules. Each rule: (regular expression matched against the whole remax_tf
# path, replacement). Replacements are templates for ``re.Match.expand`` or
# callables of the match.
Rule = Tuple[str, object]


def _plus_one(group: int) -> Callable[[re.Match], str]:
    return lambda m: str(int(m.group(group)) + 1)


def _sub_all(path: str, rules: Sequence[Tuple[re.Pattern, object]]) -> str:
    for pattern, replacement in rules:
        path = pattern.sub(replacement, path)
    return path


def _compile(rules: Sequence[Rule]) -> List[Tuple[re.Pattern, object]]:
    return [(re.compile(p), r) for p, r in rules]


# Encoder: functional backbones, keyed "<keras layer name>/<weight name>".
_RESNET50_RULES = _compile(
    [
        (r"^stem/kernel$", r"_stem/_conv/kernel"),
        (r"^stem_bn/(\w+)$", r"_stem/_batch_norm/\1"),
        (
            r"^stage(\d)_block(\d+)_conv([12])/kernel$",
            r"_stage\1/_block\2/_conv\3_bn_act/_conv/kernel",
        ),
        (
            r"^stage(\d)_block(\d+)_conv([12])_bn/(\w+)$",
            r"_stage\1/_block\2/_conv\3_bn_act/_batch_norm/\4",
        ),
        (
            r"^stage(\d)_block(\d+)_conv3/kernel$",
            r"_stage\1/_block\2/_conv3_bn/_conv/kernel",
        ),
        (
            r"^stage(\d)_block(\d+)_conv3_bn/(\w+)$",
            r"_stage\1/_block\2/_conv3_bn/_batch_norm/\3",
        ),
        (
            r"^stage(\d)_block(\d+)_shortcut/kernel$",
            r"_stage\1/_block\2/_shortcut/_conv/kernel",
        ),
        (
            r"^stage(\d)_block(\d+)_shortcut_bn/(\w+)$",
            r"_stage\1/_block\2/_shortcut/_batch_norm/\3",
        ),
    ]
)

_MOBILENET_V3_RULES = _compile(
    [
        # The stem (block0) and the last 1x1 conv are plain conv + BN.
        (r"^block(\d+)/kernel$", r"_blocks/\1/_conv/kernel"),
        (r"^block(\d+)_bn/(\w+)$", r"_blocks/\1/_batch_norm/\2"),
        (r"^block(\d+)_expand/kernel$", r"_blocks/\1/_conv1_bn_act/_conv/kernel"),
        (r"^block(\d+)_expand_bn/(\w+)$", r"_blocks/\1/_conv1_bn_act/_batch_norm/\2"),
        (
            r"^block(\d+)_depthwise/depthwise_kernel$",
            r"_blocks/\1/_conv2_bn_act/_depthwise_conv/depthwise_kernel",
        ),
        (
            r"^block(\d+)_depthwise_bn/(\w+)$",
            r"_blocks/\1/_conv2_bn_act/_batch_norm/\2",
        ),
        (
            r"^block(\d+)_se_(reduce|expand)/(kernel|bias)$",
            r"_blocks/\1/_squeeze_excitation/_se_\2/\3",
        ),
        (r"^block(\d+)_project/kernel$", r"_blocks/\1/_conv3_bn/_conv/kernel"),
        (r"^block(\d+)_project_bn/(\w+)$", r"_blocks/\1/_conv3_bn/_batch_norm/\2"),
    ]
)

# ConvNeXt: DeepLab2's is subclassed with Keras Sequential lists
# (``downsample_layers/i``, ``stages/i``) whose weights are tracked as
# ``layer_with_weights-j``; (pattern, replacement, transform).
_CONVNEXT_RULES = [
    (re.compile(p), r, t)
    for p, r, t in [
        (
            r"^stem_conv/(kernel|bias)$",
            r"downsample_layers/0/layer_with_weights-0/\1",
            None,
        ),
        (
            r"^stem_norm/(gamma|beta)$",
            r"downsample_layers/0/layer_with_weights-1/\1",
            None,
        ),
        (
            r"^downsample(\d)_norm/(gamma|beta)$",
            r"downsample_layers/\1/layer_with_weights-0/\2",
            None,
        ),
        (
            r"^downsample(\d)_conv/(kernel|bias)$",
            r"downsample_layers/\1/layer_with_weights-1/\2",
            None,
        ),
        (
            r"^stage(\d)_block(\d+)_depthwise_conv/depthwise_kernel$",
            r"stages/\1/layer_with_weights-\2/depthwise_conv/kernel",
            "grouped_to_depthwise_kernel",
        ),
        (
            r"^stage(\d)_block(\d+)_(depthwise_conv|pointwise_conv1|pointwise_conv2)/(kernel|bias)$",
            r"stages/\1/layer_with_weights-\2/\3/\4",
            None,
        ),
        (
            r"^stage(\d)_block(\d+)_norm/(gamma|beta)$",
            r"stages/\1/layer_with_weights-\2/norm/\3",
            None,
        ),
        (
            r"^stage(\d)_block(\d+)_layer_scale/gamma$",
            r"stages/\1/layer_with_weights-\2/layer_scale",
            "layer_scale_to_vector",
        ),
    ]
]

# Encoder: our subclassed Axial-ResNet-50, keyed by object path.
_AXIAL_RESNET_RULES = _compile(
    [
        (r"^_stem/_convs/0/", r"_stem/_conv1_bn_act/"),
        (r"^_stem/_convs/1/", r"_stem/_conv2_bn_act/"),
        (r"^_stem/_convs/2/", r"_stem/_conv3_bn/"),
        (
            r"^_stages/(\d+)/_blocks/(\d+)/",
            lambda m: f"_stage{int(m.group(1)) + 2}/_block{int(m.group(2)) + 1}/",
        ),
    ]
)

# Depthwise-separable convs (heads, semantic decoder): DeepLab2 wraps them in
# a ``_conv1_bn_act`` level.
_SEPARABLE = (
    r"(^|/)(conv_block/)?_(depthwise|pointwise)/",
    r"\1\2_conv1_bn_act/_\3/",
)

_PIXEL_DECODER_RULES = _compile(
    [
        (
            r"^_stages/(\d+)/_blocks/(\d+)/",
            lambda m: f"_stages/{m.group(1)}/_block{int(m.group(2)) + 1}/",
        ),
        (
            r"^_skip_connections/(\d+)/_projections/(\d+)/",
            lambda m: (
                f"_skip_connections/{m.group(1)}/_resized_conv_bn{int(m.group(2)) + 1}/"
            ),
        ),
    ]
)

_KMAX_LAYER_RULES = _compile(
    [
        (
            r"^_batch_norm_(similarity|retrieved_value)/",
            r"_memory_attention/_batch_norm_\1/",
        ),
        (r"^_auxiliary_predictor/", r"_auxiliary_clustering_predictor/"),
        _SEPARABLE,
    ]
)

_SEMANTIC_DECODER_RULES = _compile(
    [
        (
            r"^_aspp/_atrous_convs/(\d+)/",
            lambda m: f"_aspp/_aspp_conv{int(m.group(1)) + 1}/_conv_bn_act/",
        ),
        (r"^_aspp/_pool_conv_bn_act/", r"_aspp/_aspp_pool/_conv_bn_act/"),
        (
            r"^_fusion_convs/(\d+)/",
            lambda m: f"_fusion_conv{int(m.group(1)) + 1}/_conv1_bn_act/",
        ),
        (
            r"^_low_level_convs/(\d+)/",
            lambda m: f"_low_level_conv{int(m.group(1)) + 1}/",
        ),
    ]
)

_HEAD_RULES = _compile([_SEPARABLE])


def encoder_family(encoder) -> str:
    """``'resnet50'``, ``'axial_resnet50'``, ``'convnext'`` or ``'mobilenet_v3'``
    from a remax_tf encoder (its name is the backbone name, ``kmax_`` prefix
    optional)."""
    name = encoder.name.lower()
    if "axial_resnet" in name:
        return "axial_resnet50"
    if "resnet50" in name or "resnet_50" in name:
        return "resnet50"
    if "convnext" in name:
        return "convnext"
    if "mobilenet_v3" in name:
        return "mobilenet_v3"
    raise ValueError(
        f"no DeepLab2 name rules for the encoder {encoder.name!r} (known: ResNet-50, "
        "Axial-ResNet-50, ConvNeXt-T/S/B/L, MobileNetV3-S/L)."
    )


def _weight_name(variable: tf.Variable) -> str:
    """``'stage2_block1_conv1_bn/gamma:0'`` -> ``'gamma'``."""
    return variable.name.split(":")[0].split("/")[-1]


def _is_functional(model) -> bool:
    return hasattr(model, "layers") and getattr(model, "_is_graph_network", False)


def _object_paths(root, prefix: str = "") -> Dict[int, Tuple[str, tf.Variable]]:
    """id(variable) -> (object path, variable), as ``tf.train.Checkpoint`` names
    them (breadth first, the first path found)."""
    found: Dict[int, Tuple[str, tf.Variable]] = {}
    seen = {id(root)}
    queue = collections.deque([(root, prefix)])
    while queue:
        obj, path = queue.popleft()
        for name, child in tf.train.TrackableView.children(obj).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = f"{path}/{name}" if path else name
            if isinstance(child, tf.Variable):
                found[id(child)] = (child_path, child)
            else:
                queue.append((child, child_path))
    return found


def _apply_rules(path: str, rules) -> Optional[Target]:
    for pattern, replacement, transform in rules:
        match = pattern.fullmatch(path)
        if match:
            if isinstance(replacement, str):
                return Target(match.expand(replacement), transform)
            return Target(replacement(match), transform)
    return None


# (remax_tf path, DeepLab2 target or None, variable), relative to one item.
_Entry = Tuple[str, Optional[Target], tf.Variable]


def _encoder_entries(encoder) -> List[_Entry]:
    family = encoder_family(encoder)
    if family == "axial_resnet50":
        return [
            (path, Target(_sub_all(path, _AXIAL_RESNET_RULES)), variable)
            for path, variable in _object_paths(encoder).values()
        ]
    rules = {
        "convnext": _CONVNEXT_RULES,
        "resnet50": [(p, r, None) for p, r in _RESNET50_RULES],
        "mobilenet_v3": [(p, r, None) for p, r in _MOBILENET_V3_RULES],
    }[family]
    entries, seen = [], set()
    for layer in encoder.layers:
        for variable in layer.weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            ours = f"{layer.name}/{_weight_name(variable)}"
            entries.append((ours, _apply_rules(ours, rules), variable))
    return entries


def _transformer_decoder_entries(decoder) -> List[_Entry]:
    # DeepLab2's flat list of kMaX layers holds our stages' layers in order:
    # flat index = blocks of the earlier stages + block index.
    stages = getattr(decoder, "_layers_per_stage", [])
    offsets = [sum(len(stage) for stage in stages[:s]) for s in range(len(stages))]
    pattern = re.compile(r"^_layers_per_stage/(\d+)/(\d+)/(.*)$")
    entries = []
    for path, variable in _object_paths(decoder).values():
        match = pattern.match(path)
        if match:
            k = offsets[int(match.group(1))] + int(match.group(2))
            rest = _sub_all(match.group(3), _KMAX_LAYER_RULES)
            target = Target(f"_kmax_decoder/{k}/_block1_transformer/{rest}")
        else:
            target = Target(path)
        entries.append((path, target, variable))
    return entries


def _item_entries(name: str, item) -> List[_Entry]:
    if isinstance(item, tf.Variable):
        return [("", Target(""), item)]
    if name == common.CKPT_ENCODER:
        return _encoder_entries(item)
    if name == common.CKPT_TRANSFORMER_DECODER:
        return _transformer_decoder_entries(item)
    if name.startswith(common.CKPT_REMAX_SEMANTIC_HEAD_PREFIX):
        # ReMaX's heads: DeepLab2 has no counterpart.
        return [(p, None, v) for p, v in _object_paths(item).values()]
    rules = {
        common.CKPT_PIXEL_DECODER: _PIXEL_DECODER_RULES,
        common.CKPT_SEMANTIC_DECODER: _SEMANTIC_DECODER_RULES,
    }.get(name, _HEAD_RULES)
    return [
        (path, Target(_sub_all(path, rules)), variable)
        for path, variable in _object_paths(item).values()
    ]


@dataclasses.dataclass(frozen=True)
class MappedVariable:
    """One remax_tf variable and where DeepLab2 keeps its value.

    Attributes:
      item: The checkpoint item holding it (``'encoder'``, ...).
      ours: Its remax_tf path: ``item/object path``, or for a functional
        encoder ``encoder/<Keras layer name>/<weight name>``.
      target: Its DeepLab2 :class:`Target` (path from a model checkpoint's
        root), or None where DeepLab2 has no such weight (ReMaX's heads).
      variable: The variable.
    """

    item: str
    ours: str
    target: Optional[Target]
    variable: tf.Variable


def map_items(items: Mapping[str, object]) -> List[MappedVariable]:
    """Every variable of the built checkpoint ``items`` (``KMaXDeepLab.
    checkpoint_items``, or ``{'encoder': encoder}``) with its DeepLab2 target."""
    result, seen = [], set()
    for name, item in items.items():
        for path, target, variable in _item_entries(name, item):
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            ours = f"{name}/{path}" if path else name
            if target is not None:
                full = f"{name}/{target.path}" if target.path else name
                target = Target(full, target.transform)
            result.append(MappedVariable(name, ours, target, variable))
    return result


# ----------------------------------------------------------------------------
# Layouts.
# Encoder paths only DeepLab2's encoders have (ResNet/Axial-ResNet stems and
# stages, MobileNet blocks, ConvNeXt Sequential lists); ours are
# ``layer_with_weights-N`` (functional) or ``_stem/_convs``, ``_stages/i``.
_DEEPLAB2_ENCODER_PATH = re.compile(
    r"^(_stem/_(conv|batch_norm|conv1_bn_act)/|_stage\d/_block\d+/|_blocks/\d+/_"
    r"|downsample_layers/\d+/layer_with_weights-|stages/\d+/layer_with_weights-)"
)


def _variable_paths(prefix: str) -> List[str]:
    return [
        key[: -len(_ATTRIBUTES_SUFFIX)]
        for key in tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        if key.endswith(_ATTRIBUTES_SUFFIX) and _OPTIMIZER_SLOT not in key
    ]


def detect_layout(prefix: str) -> Optional[str]:
    """The DeepLab2 layout of the checkpoint ``prefix`` (one of :data:`LAYOUTS`),
    or None when it is not one of DeepLab2's (e.g. a remax_tf checkpoint)."""
    paths = _variable_paths(prefix)
    if any(p.startswith(MODEL_GARDEN_ENCODER_PREFIX) for p in paths):
        return LAYOUT_MODEL_GARDEN
    if any(p.startswith("transformer_decoder/_kmax_decoder/") for p in paths):
        return LAYOUT_MODEL
    encoder = f"{common.CKPT_ENCODER}/"
    if any(
        p.startswith(encoder) and _DEEPLAB2_ENCODER_PATH.match(p[len(encoder) :])
        for p in paths
    ):
        return LAYOUT_ENCODER
    if any(_DEEPLAB2_ENCODER_PATH.match(p) for p in paths):
        return LAYOUT_KERAS_WEIGHTS
    return None


def _checkpoint_path(target_path: str, layout: str) -> Optional[str]:
    """A model-relative DeepLab2 path in the checkpoint of ``layout``."""
    if layout == LAYOUT_MODEL:
        return target_path
    encoder = f"{common.CKPT_ENCODER}/"
    if not target_path.startswith(encoder):
        return None
    if layout == LAYOUT_ENCODER:
        return target_path
    if layout == LAYOUT_MODEL_GARDEN:
        return MODEL_GARDEN_ENCODER_PREFIX + target_path[len(encoder) :]
    return target_path[len(encoder) :]  # LAYOUT_KERAS_WEIGHTS


def _is_model_path(path: str, layout: str) -> bool:
    """Whether a checkpoint path holds model weights (not optimizer or step)."""
    root = path.split("/", 1)[0]
    if layout == LAYOUT_KERAS_WEIGHTS:
        return bool(_DEEPLAB2_ENCODER_PATH.match(path))
    if layout == LAYOUT_MODEL_GARDEN:
        return path.startswith(MODEL_GARDEN_ENCODER_PREFIX)
    return root not in NON_MODEL_ROOT_CHILDREN


def restore_deeplab2(  # noqa: C901, PLR0912, PLR0915 (long orchestration, to split)
    items: Mapping[str, object],
    path: str,
    *,
    exclude: Iterable[str] = (),
    layout: Optional[str] = None,
    what: str = "checkpoint",
):
    """Restores the built ``items`` from the DeepLab2 checkpoint at ``path``.

    Args:
      items: Checkpoint items (``KMaXDeepLab.checkpoint_items``, or
        ``{'encoder': encoder}``); unbuilt ones are skipped and reported.
      path: A DeepLab2 checkpoint prefix or a directory (its latest).
      exclude: Regular expressions searched in each variable's remax_tf path
        (``item/object path``, as :data:`~remax_tf.model.checkpoint_restore.
        CLASS_HEAD_PATTERNS` are written); matches keep their initial values.
      layout: One of :data:`LAYOUTS`; default: :func:`detect_layout`.
      what: How errors and logs name the checkpoint.

    Returns:
      A :class:`~remax_tf.model.checkpoint_report.RestoreReport` whose
      ``layout`` is the DeepLab2 layout; ``missing`` lists the model
      variables DeepLab2 has no value for (ReMaX's semantic heads), ``skipped``
      the checkpoint's optimizer slots and step counters, ``unused`` DeepLab2
      model weights that no variable took.

    Raises:
      ValueError: If the checkpoint is not a DeepLab2 one, if mapped variables
        differ in shape (nothing is restored then), or if nothing matched.
    """
    prefix = resolve_checkpoint_prefix(path, what)
    layout = layout or detect_layout(prefix)
    if layout not in LAYOUTS:
        raise ValueError(f"{what} {prefix!r} is not a DeepLab2 checkpoint.")
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    patterns = [re.compile(p) for p in exclude]
    built = {
        n: o
        for n, o in items.items()
        if isinstance(o, tf.Variable) or getattr(o, "weights", None)
    }
    unbuilt = tuple(sorted(set(items) - set(built)))
    mapped = map_items(built)

    to_assign: List[Tuple[tf.Variable, str, Optional[str]]] = []
    missing, excluded, mismatched = [], [], []
    taken = set()
    for entry in mapped:
        key = None
        if entry.target is not None:
            ckpt_path = _checkpoint_path(entry.target.path, layout)
            if ckpt_path is not None and ckpt_path + _ATTRIBUTES_SUFFIX in shapes:
                key = ckpt_path + _ATTRIBUTES_SUFFIX
        if key is None:
            missing.append(entry.variable.name)
            continue
        taken.add(key)
        if any(p.search(entry.ours) for p in patterns):
            excluded.append(entry.variable.name)
            continue
        shape = shapes[key]
        if entry.target.transform:
            shape = TRANSFORMS[entry.target.transform](np.zeros(shape, np.int8)).shape
        if tuple(shape) != tuple(entry.variable.shape.as_list()):
            mismatched.append(
                f"{entry.ours}: model {entry.variable.shape.as_list()} vs DeepLab2 "
                f"{object_path_of(key)} {list(shapes[key])}"
            )
            continue
        to_assign.append((entry.variable, key, entry.target.transform))
    if mismatched:
        mismatched.sort()
        raise ValueError(
            f"{what} {prefix!r} (DeepLab2 layout {layout}) does not fit the model: "
            f"{len(mismatched)} variables differ in shape: "
            + "; ".join(mismatched[:20])
            + (f"; ... ({len(mismatched) - 20} more)" if len(mismatched) > 20 else "")
            + ". Another backbone or config? If only the class set differs, leave the "
            "class heads at initialisation (restore_semantic_last_layer_from_initial_"
            "checkpoint: false, or --skip_class_heads). Nothing was restored."
        )
    if not to_assign and not excluded:
        raise ValueError(
            f"{what} {prefix!r} (DeepLab2 layout {layout}) holds no variable of the "
            "model: is it a checkpoint of another backbone?"
        )
    for variable, key, transform in to_assign:
        value = reader.get_tensor(key)
        if transform:
            value = TRANSFORMS[transform](value)
        variable.assign(value)

    model_paths, skipped = [], []
    for key in shapes:
        if not key.endswith(_ATTRIBUTES_SUFFIX) or _OPTIMIZER_SLOT in key:
            if _OPTIMIZER_SLOT in key or key.startswith(NON_MODEL_ROOT_CHILDREN):
                skipped.append(key)
            continue
        if _is_model_path(object_path_of(key), layout):
            model_paths.append(key)
        else:
            skipped.append(object_path_of(key))
    unused = sorted(object_path_of(k) for k in model_paths if k not in taken)
    absent = ()
    if layout != LAYOUT_MODEL:
        absent = tuple(sorted(n for n in built if n != common.CKPT_ENCODER))
    report = RestoreReport(
        checkpoint=prefix,
        layout=layout,
        restored=tuple(v.name for v, _, _ in to_assign),
        missing=tuple(missing),
        unused=tuple(unused),
        excluded=tuple(excluded),
        absent_items=absent,
        unbuilt_items=unbuilt,
        skipped=tuple(sorted(skipped)),
    )
    _LOGGER.info("%s: %s", what, report.summary())
    return report


def object_path_of(key: str) -> str:
    """Checkpoint key -> object path (``.../.ATTRIBUTES/VARIABLE_VALUE`` cut)."""
    return key[: -len(_ATTRIBUTES_SUFFIX)] if key.endswith(_ATTRIBUTES_SUFFIX) else key


__all__ = [
    "LAYOUTS",
    "MappedVariable",
    "TRANSFORMS",
    "Target",
    "detect_layout",
    "encoder_family",
    "map_items",
    "restore_deeplab2",
]

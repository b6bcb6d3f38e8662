"""Partial restore of a model's checkpoint items from a TF2 checkpoint.

One implementation serves every partial restore of remax_tf:

* :func:`restore_items`: ``model_options.initial_checkpoint`` (the trainer) and
  export: restores named items (``KMaXDeepLab.checkpoint_items``: ``encoder``,
  ``pixel_decoder``, ``transformer_decoder``, the heads, ...) from a
  ``tf.train.Checkpoint`` whose root holds items of the same names, e.g. a
  ``ckpt-N`` of a training run (whose root also holds ``global_step`` and the
  optimizer, which are ignored);
* :func:`restore_root`: an object saved as the checkpoint's root
  (``tf.train.Checkpoint(encoder_model)`` or ``model.save_weights(prefix)``);
* :func:`remax_tf.model.pixel_encoder.weights.load_pretrained_weights` (the
  backbone's ``pretrained_weights``) is a thin use of both.

Variables are matched through the checkpoint's object graph, as
``tf.train.Checkpoint.read`` matches them, but the restore is explicit: every
match is shape-checked first (a mismatch raises and restores nothing), then
each matched variable is assigned its checkpoint value. Checkpoint variables
whose object path matches an ``exclude`` pattern are not restored (they keep
their initial values), which is how a model with another class set reuses a
checkpoint (:data:`CLASS_HEAD_PATTERNS`). The returned :class:`RestoreReport`
lists what was restored, what kept its initial value and why, and what in the
checkpoint went unused.

The model must be built (its variables created) before a restore: unbuilt
items are reported, not restored later.
"""

from __future__ import annotations

import collections
import logging
import re
from typing import Dict
from typing import Iterable
from typing import List
from typing import Mapping
from typing import Tuple

import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from remax_tf.model import deeplab2_mapping
from remax_tf.model.checkpoint_report import RestoreReport
from remax_tf.model.checkpoint_report import resolve_checkpoint_prefix

# Defined in checkpoint_report (below deeplab2_mapping); imported from here.
__all__ = [
    "CLASS_HEAD_PATTERNS",
    "RestoreReport",
    "object_path",
    "resolve_checkpoint_prefix",
    "restore_items",
    "restore_model_checkpoint",
    "restore_root",
    "root_children",
]

_LOGGER = logging.getLogger(__name__)

# tf.train.Checkpoint's key of the serialized object graph, and the suffix of
# a variable's value in a checkpoint key ("<object path>/.ATTRIBUTES/...").
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VARIABLE_ATTRIBUTE = "VARIABLE_VALUE"
_ATTRIBUTES_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Root children of a training checkpoint that never belong to the model.
_NON_MODEL_ROOT_CHILDREN = ("save_counter", "optimizer", "global_step")
# Shape mismatches named in the error (a class-count change makes 16 in the
# demo model, all worth seeing).
_MAX_LISTED_MISMATCHES = 20

# Object paths (regular expressions searched in checkpoint object paths) of
# the layers whose shapes depend on the number of classes, i.e. what DeepLab2's
# ``restore_semantic_last_layer_from_initial_checkpoint: false`` leaves at
# initialisation: the final class head (item ``transformer_class_head``), the
# class head of every kMaX layer's auxiliary predictor (inside
# ``transformer_decoder``), kMaX's auxiliary semantic last layer (item
# ``semantic_last_layer``) and the last 1x1 conv of each ReMaX semantic head.
CLASS_HEAD_PATTERNS = (
    r"(^|/)_?transformer_class_head(/|$)",
    r"^semantic_last_layer(/|$)",
    r"^remax_semantic_head_\d+/_final_conv(/|$)",
)


def _object_graph(reader, what: str) -> trackable_object_graph_pb2.TrackableObjectGraph:
    if not reader.has_tensor(_OBJECT_GRAPH_KEY):
        raise ValueError(
            f"{what} must be an object-based (TF2 tf.train.Checkpoint) checkpoint; "
            "this one has no object graph (a TF1 name-based checkpoint?)."
        )
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    return graph


def root_children(prefix: str) -> Dict[str, int]:
    """Local name -> node id of the checkpoint root's children."""
    graph = _object_graph(tf.train.load_checkpoint(prefix), prefix)
    return {child.local_name: child.node_id for child in graph.nodes[0].children}


def _subtree_variable_keys(
    graph: trackable_object_graph_pb2.TrackableObjectGraph,
    starts: Iterable[int],
    skip: Iterable[str] = (),
) -> Dict[str, int]:
    """Checkpoint key -> node id of every variable below the ``starts`` nodes
    (children named in ``skip`` are not followed)."""
    skip = set(skip)
    keys: Dict[str, int] = {}
    seen = set(starts)
    queue = collections.deque(seen)
    while queue:
        node_id = queue.popleft()
        node = graph.nodes[node_id]
        for attribute in node.attributes:
            if attribute.name == _VARIABLE_ATTRIBUTE:
                keys[attribute.checkpoint_key] = node_id
        for child in node.children:
            if child.node_id not in seen and child.local_name not in skip:
                seen.add(child.node_id)
                queue.append(child.node_id)
    return keys


def object_path(checkpoint_key: str) -> str:
    """``'a/b/kernel/.ATTRIBUTES/VARIABLE_VALUE'`` -> ``'a/b/kernel'``."""
    if checkpoint_key.endswith(_ATTRIBUTES_SUFFIX):
        return checkpoint_key[: -len(_ATTRIBUTES_SUFFIX)]
    return checkpoint_key


def _variables(obj) -> List[tf.Variable]:
    if isinstance(obj, tf.Variable):
        return [obj]
    for attribute in ("weights", "variables"):
        if hasattr(obj, attribute):
            return list(getattr(obj, attribute))
    return []


def _restore(
    *,
    prefix: str,
    what: str,
    layout: str,
    match_root,
    subtree: Mapping[str, int],
    model_variables: List[tf.Variable],
    exclude: Tuple[str, ...],
    absent_items: Tuple[str, ...] = (),
    unbuilt_items: Tuple[str, ...] = (),
    mismatch_hint: str = "",
) -> RestoreReport:
    """Matches, shape-checks and assigns; see :func:`restore_items`."""
    reader = tf.train.load_checkpoint(prefix)
    patterns = [re.compile(p) for p in exclude]
    matches = tf.train.CheckpointView(prefix).match(match_root)
    node_keys = collections.defaultdict(list)
    for key, node_id in subtree.items():
        node_keys[node_id].append(key)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()

    to_assign: List[Tuple[tf.Variable, str]] = []
    excluded: List[str] = []
    mismatched: List[str] = []
    taken, excluded_keys, matched_ids = set(), set(), set()
    for node_id, trackable in matches.items():
        if not isinstance(trackable, tf.Variable) or node_id not in node_keys:
            continue
        key = node_keys[node_id][0]
        matched_ids.add(id(trackable))
        path = object_path(key)
        if any(p.search(path) for p in patterns):
            excluded.append(trackable.name)
            excluded_keys.add(key)
            continue
        taken.add(key)
        if tuple(shapes[key]) != tuple(trackable.shape.as_list()):
            mismatched.append(
                f"{path}: model {trackable.shape.as_list()} vs checkpoint "
                f"{shapes[key]} (variable {trackable.name})"
            )
        elif dtypes[key] != trackable.dtype.base_dtype:
            mismatched.append(
                f"{path}: model dtype {trackable.dtype.name} vs checkpoint "
                f"{dtypes[key].name}"
            )
        else:
            to_assign.append((trackable, key))
    if mismatched:
        mismatched.sort()
        shown = _MAX_LISTED_MISMATCHES
        raise ValueError(
            f"{what} {prefix!r} does not fit the model: {len(mismatched)} variables "
            "differ in shape or dtype: "
            + "; ".join(mismatched[:shown])
            + (
                f"; ... ({len(mismatched) - shown} more)"
                if len(mismatched) > shown
                else ""
            )
            + ". Is it a checkpoint of another architecture or config?"
            + (f" {mismatch_hint}" if mismatch_hint else "")
            + " Nothing was restored."
        )
    if not to_assign and not excluded:
        raise ValueError(
            f"{what} {prefix!r} holds no variable of the model (layout {layout}); "
            "is it a checkpoint of another model, or was the model not built "
            "(call it once before restoring)?"
        )
    for variable, key in to_assign:
        variable.assign(reader.get_tensor(key))
    report = RestoreReport(
        checkpoint=prefix,
        layout=layout,
        restored=tuple(v.name for v, _ in to_assign),
        missing=tuple(v.name for v in model_variables if id(v) not in matched_ids),
        unused=tuple(
            sorted(object_path(k) for k in set(subtree) - taken - excluded_keys)
        ),
        excluded=tuple(excluded),
        absent_items=absent_items,
        unbuilt_items=unbuilt_items,
    )
    _LOGGER.info("%s: %s", what, report.summary())
    if report.missing:
        _LOGGER.warning(
            "%s: %d model variables not in %s (kept at init), e.g. %s",
            what,
            len(report.missing),
            prefix,
            list(report.missing[:10]),
        )
    return report


def _unique_variables(objects: Iterable) -> List[tf.Variable]:
    seen, result = set(), []
    for obj in objects:
        for variable in _variables(obj):
            if id(variable) not in seen:
                seen.add(id(variable))
                result.append(variable)
    return result


def restore_items(
    items: Mapping[str, object],
    path: str,
    *,
    exclude: Iterable[str] = (),
    what: str = "initial_checkpoint",
) -> RestoreReport:
    """Restores the named ``items`` from the checkpoint at ``path``.

    Args:
      items: Item name -> built trackable (layer, model, variable), e.g.
        ``model.checkpoint_items``; the checkpoint root must hold items of
        these names (other root children such as ``global_step`` and
        ``optimizer`` are ignored).
      path: A checkpoint prefix, or a directory whose latest checkpoint is used.
      exclude: Regular expressions searched in the checkpoint object path of
        each variable (``'transformer_decoder/_layers_per_stage/0/0/...'``);
        matching variables keep their initial values. Pass
        :data:`CLASS_HEAD_PATTERNS` to reuse a checkpoint trained on another
        class set.
      what: How errors and logs name the checkpoint (e.g. the config field).

    DeepLab2 checkpoints (:func:`remax_tf.model.deeplab2_mapping.detect_layout`:
    a kMaX model-zoo or training checkpoint, an ImageNet backbone checkpoint,
    the Model Garden layout, Keras weights of an encoder) are detected and
    restored through DeepLab2's names
    (:func:`remax_tf.model.deeplab2_mapping.restore_deeplab2`).

    Returns:
      The :class:`RestoreReport`.

    Raises:
      FileNotFoundError: If ``path`` is not a checkpoint.
      ValueError: If matched variables differ in shape or dtype (another
        architecture, or another class count without ``exclude``), naming
        them, or if no variable of ``items`` is in the checkpoint. Nothing is
        restored then.
    """
    prefix = resolve_checkpoint_prefix(path, what)
    graph = _object_graph(tf.train.load_checkpoint(prefix), what)
    if deeplab2_mapping.detect_layout(prefix):
        # A DeepLab2 checkpoint (model zoo, ImageNet backbone, Model Garden or
        # Keras weights): mapped by name rules, not by object graph.
        return deeplab2_mapping.restore_deeplab2(
            items, prefix, exclude=exclude, what=what
        )
    children = {c.local_name: c.node_id for c in graph.nodes[0].children}
    built = {name: obj for name, obj in items.items() if _variables(obj)}
    unbuilt = tuple(sorted(set(items) - set(built)))
    present = {name: obj for name, obj in built.items() if name in children}
    absent = tuple(sorted(name for name in built if name not in children))
    if not present:
        raise ValueError(
            f"{what} {prefix!r} holds none of the model's built checkpoint items "
            f"{sorted(built)}; its root holds {sorted(children)}. Is it a "
            "checkpoint of another model (or a backbone-only checkpoint, which "
            "belongs in backbone.pretrained_weights)?"
        )
    return _restore(
        prefix=prefix,
        what=what,
        layout="items",
        match_root=tf.train.Checkpoint(**present),
        subtree=_subtree_variable_keys(graph, [children[n] for n in present]),
        model_variables=_unique_variables(built.values()),
        exclude=tuple(exclude),
        absent_items=absent,
        unbuilt_items=unbuilt,
        mismatch_hint=(
            ""
            if exclude
            else "If only the class set differs, exclude the class-dependent layers "
            "(restore_semantic_last_layer_from_initial_checkpoint: false, "
            "i.e. exclude=CLASS_HEAD_PATTERNS)."
        ),
    )


def restore_model_checkpoint(
    model, path: str, *, exclude: Iterable[str] = (), what: str = "checkpoint"
) -> RestoreReport:
    """Restores a built ``KMaXDeepLab`` from any checkpoint remax_tf reads.

    One entry point for training (``initial_checkpoint``), prediction and
    export: a remax_tf checkpoint (``ckpt-N`` of a training run, or the output
    of ``python -m remax_tf.convert_deeplab2``) or any DeepLab2 layout.
    Equivalent to ``restore_items(model.checkpoint_items, path, ...)``.

    Args:
      model: A built model (called once); an inference-only model skips the
        training-only heads.
      path: A checkpoint prefix, or a directory whose latest checkpoint is used.
      exclude: As :func:`restore_items` (e.g. :data:`CLASS_HEAD_PATTERNS`).
      what: How errors and logs name the checkpoint (``'--checkpoint'``).

    Returns:
      The :class:`RestoreReport` (``layout``: ``'items'`` or a DeepLab2 layout).
    """
    return restore_items(model.checkpoint_items, path, exclude=exclude, what=what)


def restore_root(
    obj, path: str, *, exclude: Iterable[str] = (), what: str = "checkpoint"
) -> RestoreReport:
    """Restores ``obj`` from a checkpoint whose root is ``obj`` itself
    (``tf.train.Checkpoint(obj).write`` or ``obj.save_weights``).

    ``save_counter``, ``optimizer`` and ``global_step`` root children are
    ignored. Arguments, return value and errors as :func:`restore_items`.
    """
    prefix = resolve_checkpoint_prefix(path, what)
    graph = _object_graph(tf.train.load_checkpoint(prefix), what)
    return _restore(
        prefix=prefix,
        what=what,
        layout="root",
        # The checkpoint's root node is the object itself.
        match_root=obj,
        subtree=_subtree_variable_keys(graph, [0], skip=_NON_MODEL_ROOT_CHILDREN),
        model_variables=_unique_variables([obj]),
        exclude=tuple(exclude),
    )

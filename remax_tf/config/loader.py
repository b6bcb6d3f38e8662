"""Loading experiment textprotos: placeholders, overrides, validation.

``load_config`` accepts DeepLab2's textprotos unchanged. DeepLab2 ships its
configs with ``${VAR}`` placeholders that users edit by hand; here they are
read from the environment (or an explicit mapping). Every failure is a
:class:`ConfigError` naming the file, the line or field, the bad value and the
fix.
"""

from __future__ import annotations

import os
import re
from typing import Iterable
from typing import List
from typing import Mapping
from typing import Optional

from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message as pb_message
from google.protobuf import text_format

from remax_tf.config.errors import ConfigError
from remax_tf.config.shipped import read_config_text
from remax_tf.config.validation import validate_config
from remax_tf.protos import config_pb2

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# What load_config does with a ``${VAR}`` whose VAR is unset: raise a
# ConfigError naming it, leave it as the literal text ``${VAR}``, or read "".
UNSET_PLACEHOLDERS = ("error", "keep", "empty")


def placeholder_names(text: str) -> List[str]:
    """The names of the ``${VAR}`` placeholders in ``text``, in order, once each."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


def substitute_placeholders(
    text: str, path: str, environ: Optional[Mapping[str, str]] = None
) -> str:
    """Replaces every ``${VAR}`` by its value in ``environ`` (default os.environ).

    Substitution is line by line so that parse errors keep their line numbers.
    """
    environ = os.environ if environ is None else environ
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            continue

        def _value(match: re.Match, number=number, line=line) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(
                    f"{path}:{number}: placeholder ${{{name}}} is not set "
                    f"(line: {line.strip()!r}). Fix: export {name}=<value> before "
                    "running (an empty value is allowed for optional fields such as "
                    "initial_checkpoint)."
                )
            value = environ[name]
            if "\n" in value or '"' in value:
                raise ConfigError(
                    f"{path}:{number}: the value of ${{{name}}} ({value!r}) contains a "
                    "newline or a double quote, which would break the textproto. "
                    "Fix: set it to a plain string."
                )
            return value

        lines[number - 1] = _PLACEHOLDER.sub(_value, line)
    return "\n".join(lines)


def _parse_text(text: str, path: str) -> config_pb2.ExperimentOptions:
    config = config_pb2.ExperimentOptions()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        where = f"{path}:{e.GetLine()}:{e.GetColumn()}" if e.GetLine() else path
        raise ConfigError(
            f"{where}: {_strip_location(str(e))}. Fix: check the field name and "
            "value type against protos/*.proto (DeepLab2 field names are "
            "accepted unchanged; remax_tf additions are numbered >= 100)."
        ) from e
    return config


def _strip_location(message: str) -> str:
    return re.sub(r"^\d+:\d+ : ", "", message)


def _merge_replacing_lists(
    target: pb_message.Message, source: pb_message.Message
) -> None:
    """Merges ``source`` into ``target``; a repeated field set in ``source``
    replaces the target's list instead of appending to it."""
    for field, value in source.ListFields():
        if field.is_repeated:
            target.ClearField(field.name)
            getattr(target, field.name).extend(value)
        elif field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE:
            _merge_replacing_lists(getattr(target, field.name), value)
        else:
            setattr(target, field.name, value)


def apply_override(
    config: pb_message.Message, override: str, source: str = "--config_override"
) -> None:
    """Applies one ``dotted.field.path=value`` override in place.

    Scalars are replaced, repeated fields are replaced whole (``[a, b]`` or a
    single value), and message fields are merged from a textproto body
    (``model_options.remax={eta: 0.2}``).
    """
    if "=" not in override:
        raise ConfigError(
            f"{source}: {override!r} is not of the form field.path=value, e.g. "
            '"trainer_options.solver_options.base_learning_rate=0.01".'
        )
    dotted, value = (s.strip() for s in override.split("=", 1))
    parent = config
    parts = dotted.split(".")
    for depth, name in enumerate(parts):
        field = parent.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            known = ", ".join(sorted(parent.DESCRIPTOR.fields_by_name))
            raise ConfigError(
                f"{source}: {dotted!r}: {parent.DESCRIPTOR.name} has no field "
                f"{name!r}. Known fields: {known}."
            )
        if depth == len(parts) - 1:
            break
        if (
            field.type != pb_descriptor.FieldDescriptor.TYPE_MESSAGE
            or field.is_repeated
        ):
            raise ConfigError(
                f"{source}: {dotted!r}: {name!r} is not a singular message field, "
                "so nothing can be selected below it."
            )
        parent = getattr(parent, name)
    name = parts[-1]
    is_string = field.type == pb_descriptor.FieldDescriptor.TYPE_STRING
    is_message = field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE
    if field.is_repeated:
        items = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        elements = [v.strip() for v in items.split(",") if v.strip()]
        if is_string:
            elements = [v if v.startswith('"') else f'"{v}"' for v in elements]
        snippet = f"{name}: [{', '.join(elements)}]" if elements else ""
        parent.ClearField(name)
    elif is_message:
        body = value[1:-1] if value.startswith("{") and value.endswith("}") else value
        patch = type(getattr(parent, name))()
        _parse_override(
            text_format.Parse,
            body,
            patch,
            f"{source}: {dotted}={value!r}",
            f"a textproto body of {field.message_type.name}",
        )
        _merge_replacing_lists(getattr(parent, name), patch)
        return
    else:
        if is_string and not (value.startswith('"') or value.startswith("'")):
            value = f'"{value}"'
        snippet = f"{name}: {value}"
    _parse_override(
        text_format.Merge,
        snippet,
        parent,
        f"{source}: {dotted}={value!r}",
        f"a value of the field's type ({_type_name(field)})",
    )


def _parse_override(parse, text: str, message, culprit: str, expected: str) -> None:
    """``parse(text, message)``; a ParseError becomes a ConfigError naming the
    override (``culprit``) and what to give instead (``expected``)."""
    try:
        parse(text, message)
    except text_format.ParseError as e:
        raise ConfigError(
            f"{culprit}: {_strip_location(str(e))}. Fix: give {expected}."
        ) from e


def _type_name(field: pb_descriptor.FieldDescriptor) -> str:
    names = {
        v: k[len("TYPE_") :].lower()
        for k, v in vars(pb_descriptor.FieldDescriptor).items()
        if k.startswith("TYPE_")
    }
    kind = names.get(field.type, "value")
    if field.is_repeated:
        return f"repeated {kind}"
    return kind


def load_config(
    path: str,
    overrides: Iterable[str] = (),
    *,
    environ: Optional[Mapping[str, str]] = None,
    num_replicas: int = 1,
    validate: bool = True,
    unset_placeholders: str = "error",
) -> config_pb2.ExperimentOptions:
    """Reads, completes and validates an experiment textproto.

    Args:
      path: The textproto file (DeepLab2's or remax_tf's). A relative
        ``configs/<dataset>/<name>.textproto`` that does not exist names the
        config shipped with remax_tf (:mod:`remax_tf.config.shipped`).
      overrides: ``field.path=value`` strings applied after parsing, in order.
      environ: Values of ``${VAR}`` placeholders; default ``os.environ``.
      num_replicas: Replicas the global batch sizes must divide into.
      validate: Run :func:`validate_config` (the trainer always does).
      unset_placeholders: A ``${VAR}`` whose VAR is not in ``environ``:
        ``"error"`` raises a ConfigError naming it; ``"empty"`` reads it as
        an empty string (commands that read no data files: predicting,
        benchmarks); ``"keep"`` leaves the text ``${VAR}`` in the field, so
        that whatever later needs the field can name the variable (see
        :func:`placeholder_names`; ``python -m remax_tf.export``).

    Returns:
      The ``ExperimentOptions`` message.

    Raises:
      ConfigError: naming the file, line or field, the value and the fix.
    """
    try:
        text = read_config_text(path)
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the config file ({e.strerror}). "
            "Fix: pass an existing .textproto to --config_file (configs/<dataset>/"
            "<name>.textproto also names the configs shipped with remax_tf)."
        ) from e
    if unset_placeholders not in UNSET_PLACEHOLDERS:
        raise ValueError(
            f"unset_placeholders={unset_placeholders!r}: use one of "
            f"{UNSET_PLACEHOLDERS}."
        )
    if unset_placeholders != "error":
        environ = dict(os.environ if environ is None else environ)
        for name in placeholder_names(text):
            default = "" if unset_placeholders == "empty" else "${%s}" % name
            environ.setdefault(name, default)
    text = substitute_placeholders(text, path, environ)
    config = _parse_text(text, path)
    for override in overrides:
        apply_override(config, override)
    if validate:
        validate_config(config, path, num_replicas=num_replicas)
    return config

"""The experiment configs shipped with the package (``configs/`` of the source).

setup.py installs the source tree's ``configs/`` as the package
``remax_tf.configs``, so every installation (wheel, ``pip install .``,
``pip install -e .``) carries them. :func:`load_config` falls back to them: a
``--config_file configs/<dataset>/<name>.textproto`` that does not exist
relative to the working directory names the shipped copy, so the README's
commands work from any folder once remax_tf is installed.
"""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
import os
import pathlib
from typing import List
from typing import Optional

PACKAGE = "remax_tf.configs"
# How the configs are named in commands and docs: relative to the source root.
SOURCE_PREFIX = "configs/"
SUFFIX = ".textproto"


def configs_root() -> Traversable:
    """The shipped ``configs/`` folder.

    A source checkout used without installing (``PYTHONPATH=.``) has no
    ``remax_tf.configs`` package; its top-level ``configs/`` is used then.
    """
    try:
        return importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        return pathlib.Path(__file__).resolve().parents[2] / "configs"


def shipped_config(name: str) -> Optional[Traversable]:
    """The shipped config ``name`` (``demo/shapes_remax.textproto``, optionally
    prefixed by ``configs/``), or None when there is none of that name."""
    relative = name.replace(os.sep, "/")
    if relative.startswith("./"):
        relative = relative[2:]
    if relative.startswith(SOURCE_PREFIX):
        relative = relative[len(SOURCE_PREFIX) :]
    parts = [p for p in relative.split("/") if p]
    if not parts or ".." in parts or not parts[-1].endswith(SUFFIX):
        return None
    resource = configs_root().joinpath(*parts)
    return resource if resource.is_file() else None


def list_shipped_configs() -> List[str]:
    """Every shipped config, as ``configs/<dataset>/<name>.textproto``."""
    names = []
    root = configs_root()
    for folder in root.iterdir():
        if folder.is_dir():
            names += [
                f"{SOURCE_PREFIX}{folder.name}/{f.name}"
                for f in folder.iterdir()
                if f.name.endswith(SUFFIX)
            ]
    return sorted(names)


def read_config_text(path: str) -> str:
    """The text of ``path``, or of the shipped config it names when no such
    file exists (a path of the form ``configs/<dataset>/<name>.textproto``).

    Raises:
      OSError: neither exists (the error of opening ``path``).
    """
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        resource = (
            shipped_config(path)
            if not os.path.isabs(path)
            and path.replace(os.sep, "/").startswith(
                (SOURCE_PREFIX, "./" + SOURCE_PREFIX)
            )
            else None
        )
        if resource is None:
            raise
        return resource.read_text(encoding="utf-8")

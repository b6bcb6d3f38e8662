"""What every command-line entry point does before its real work.

* :func:`quiet_tensorflow`: TensorFlow's start-up noise (CUDA probing, oneDNN
  notices, absl pre-init warnings) is hidden unless the user has chosen a
  ``TF_CPP_MIN_LOG_LEVEL`` themselves. TensorFlow reads the variable once,
  when it is imported: a command calls this at the top of its module, before
  the imports that load TensorFlow (``remax_tf.train``, ``remax_tf.predict``,
  ``remax_tf.demo``, ``remax_tf.export.__main__``).
* :func:`native_logs_quieted`: native libraries that log through absl's C++
  logging (the TFLite converter) ignore ``TF_CPP_MIN_LOG_LEVEL``; in quiet
  mode their stderr lines are held back and shown only if the call fails.
* :func:`run_absl_app`: ``absl.app.run`` whose ``--help`` / ``--helpfull``
  exit with status 0 (absl's exit with 1, which breaks ``cmd --help && ...``).
* :func:`report_errors`: an expected failure (:class:`remax_tf.errors.RemaxError`)
  ends the command with one ``error: ...`` line and exit status 1, no
  traceback; ``--debug`` or ``REMAX_TF_DEBUG=1`` shows the traceback (for
  bug reports). Any other exception is a bug and keeps its traceback.
* :func:`list_module_flags_in_help`: absl's ``--help`` lists the flags of the
  main module only; entry points whose flags are defined in another module
  (``remax-train`` and ``trainer/train.py`` share ``remax_tf.train``'s flags,
  the converters share ``remax_tf.data.conversion``'s) list them too.

This module imports neither TensorFlow nor anything that does: the
converters' spawned worker processes (``data/shapes.py``) import it, and
:func:`quiet_tensorflow` must run before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import traceback
from types import ModuleType
from typing import Callable
from typing import Iterator
from typing import List
from typing import Optional
from typing import Sequence

from absl import app
from absl import flags

from remax_tf.errors import RemaxError

# TensorFlow's C++ log threshold for the commands: 3 hides INFO, WARNING and
# ERROR lines (CUDA probing on a machine without a usable GPU logs "failed
# call to cuInit" as an ERROR; oneDNN notices); failures still raise Python
# exceptions with their message. TF_CPP_MIN_LOG_LEVEL=0 shows everything.
QUIET_TF_CPP_MIN_LOG_LEVEL = "3"
# From this level on, native absl logs are held back too.
_QUIET_FROM_LEVEL = 2


def quiet_tensorflow() -> None:
    """Hides TensorFlow's start-up logs unless the user has set
    ``TF_CPP_MIN_LOG_LEVEL`` (then theirs is kept). Call before TensorFlow
    is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_MIN_LOG_LEVEL)


def _quiet() -> bool:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) >= _QUIET_FROM_LEVEL
    except ValueError:
        return False


@contextlib.contextmanager
def native_logs_quieted() -> Iterator[None]:
    """Holds back what native code writes to stderr (file descriptor 2) when
    ``TF_CPP_MIN_LOG_LEVEL`` >= 2; replays it if the block raises."""
    if not _quiet():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            sys.stderr.flush()
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


# Environment variable (any value but "" or "0") and flag that keep the
# traceback of expected failures.
DEBUG_ENV = "REMAX_TF_DEBUG"
DEBUG_FLAG = "--debug"


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """``--debug`` in ``argv`` (default ``sys.argv``) or ``REMAX_TF_DEBUG`` set."""
    argv = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def strip_debug_flag(argv: Sequence[str]) -> List[str]:
    """``argv`` without ``--debug`` (for parsers that do not define it)."""
    return [a for a in argv if a != DEBUG_FLAG]


def report_errors(
    main: Callable[..., Optional[int]], *args, debug: Optional[bool] = None
) -> int:
    """Runs ``main(*args)``; a :class:`RemaxError` becomes ``error: <message>``
    on stderr and exit status 1 (with its traceback too when debugging)."""
    debug = debug_requested() if debug is None else debug
    try:
        status = main(*args)
    except RemaxError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0 if status is None else int(status)


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--debug`` to an argparse command (see :func:`run_parsed`)."""
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help=f"on an error, print its traceback too (also {DEBUG_ENV}=1)",
    )


def run_parsed(main: Callable[..., Optional[int]], args: argparse.Namespace) -> int:
    """:func:`report_errors` for an argparse command: ``main(args)``, with the
    traceback when ``args.debug`` (:func:`add_debug_argument`) or
    ``REMAX_TF_DEBUG`` asks for it."""
    return report_errors(main, args, debug=args.debug or debug_requested([]))


def skipped_lines(
    skipped: Sequence[Sequence[str]], indent: str, limit: int, listed_in: str
) -> List[str]:
    """``skipped NAME: REASON`` lines for the first ``limit`` of ``skipped``
    (name, reason) pairs, then ``... and K more (all listed in LISTED_IN)``."""
    lines = [f"{indent}skipped {name}: {reason}" for name, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(
            f"{indent}... and {len(skipped) - limit} more (all listed in {listed_in})"
        )
    return lines


def list_module_flags_in_help(*modules: ModuleType) -> None:
    """Makes absl's ``--help`` (the main module's key flags) list the flags
    defined in ``modules``, whichever script is the main module."""
    main = sys.argv[0]
    for module in modules:
        for flag in flags.FLAGS.get_key_flags_for_module(module.__name__):
            flags.FLAGS.register_key_flag_for_module(main, flag)


def use_as_usage(doc: str) -> None:
    """absl prints the main module's docstring above ``--help``; a console
    script's generated main module has none, so ``doc`` is used then."""
    main = sys.modules.get("__main__")
    if main is not None and not getattr(main, "__doc__", None):
        main.__doc__ = doc


# absl's help flags (absl.app.define_help_flags).
_ABSL_HELP_FLAGS = ("-?", "-h", "--help", "--helpshort", "--helpfull", "--helpxml")


def run_absl_app(main) -> None:
    """``absl.app.run(main)``; a help request exits with status 0."""
    try:
        app.run(main)
    except SystemExit as e:
        asked = any(a.split("=")[0] in _ABSL_HELP_FLAGS for a in sys.argv[1:])
        if e.code == 1 and asked:
            raise SystemExit(0) from None
        raise

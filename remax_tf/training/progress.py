"""A one-line progress report per training loop: step, loss, speed, ETA."""

from __future__ import annotations

import contextlib
import sys
from typing import Dict
from typing import Iterator
from typing import TextIO

from absl import logging
from orbit import controller


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_progress(stats: Dict[str, float]) -> str:
    step, total = int(stats["step"]), int(stats["total_steps"])
    rate = stats["steps_per_second"]
    eta = (total - step) / rate if rate > 0 else float("inf")
    eta_text = format_duration(eta) if eta != float("inf") else "?"
    return (
        f"[train] step {step}/{total} ({100.0 * step / max(total, 1):.0f}%) | "
        f"loss {stats['loss']:.4f} | {rate:.2f} steps/s | "
        f"{stats['examples_per_second']:.1f} img/s | lr {stats['learning_rate']:.2e} | "
        f"ETA {eta_text}"
    )


class ProgressPrinter:
    """Prints :func:`format_progress` lines to a stream (stdout by default)."""

    def __init__(self, stream: TextIO = sys.stdout):
        self._stream = stream

    def __call__(self, stats: Dict[str, float]) -> None:
        print(format_progress(stats), file=self._stream, flush=True)


@contextlib.contextmanager
def orbit_messages_to_log() -> Iterator[None]:
    """Sends orbit's Controller messages to the absl INFO log only.

    orbit prints each of them to stdout as well: after every training loop a
    second ``train | step: ... | output: {...}`` line next to ours, plus
    checkpoint and evaluation notices. Within this context they go to the
    log alone (shown with ``--verbosity=0``), so stdout keeps one progress
    line per loop (:class:`ProgressPrinter`) and the evaluator's metric line.
    """
    original = controller._log
    controller._log = _log_only
    try:
        yield
    finally:
        controller._log = original


def _log_only(message: str) -> None:
    logging.info(message)

"""One progress line per training epoch, so a long fit is never silent.

A line per epoch (``detector epoch 3/15: loss 1.2345, 12.3 s``) on stdout,
flushed at once; on a terminal the line is overwritten in place as a bar.
"""

from __future__ import annotations

import sys
import time


class EpochProgress:
    """Prints ``{name} epoch e/E: loss L, T s`` after each epoch (a bar on a terminal)."""

    def __init__(self, name: str, epochs: int) -> None:
        self.name, self.epochs = name, epochs
        self.started = time.monotonic()
        self.tty = sys.stdout.isatty()

    def __call__(self, epoch: int, loss: float | None) -> None:
        """Report epoch ``epoch`` (0-based) done with mean loss ``loss``."""
        done = epoch + 1
        elapsed = time.monotonic() - self.started
        text = f"{self.name} epoch {done}/{self.epochs}: loss {loss:.4f}" if loss is not None else f"{self.name} epoch {done}/{self.epochs}"
        text += f", {elapsed:.1f} s"
        if self.tty:
            width = 20
            filled = round(width * done / self.epochs)
            end = "\n" if done >= self.epochs else ""
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}", end=end, flush=True)
        else:
            print(text, flush=True)

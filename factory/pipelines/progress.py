"""Progress of a pipeline run against its known totals: inputs written, shards committed.

Ray Data's own bars cannot know how many rows a flat_map makes
(``Total Progress: 0/?``). The write tasks know better: they report, per
block, the inputs whose rows they have all been handed and the shards they
committed to a small tally actor; the driver prints a line whenever the
counts change (``video: 3/17 inputs, 2 shards committed, 41 samples``), at
most every ``every_s`` seconds, and a last one at the end. On a terminal the
line is redrawn in place as a bar.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import ray


@ray.remote(num_cpus=0)
class ProgressTally:
    """Counts reported by the write tasks of one run."""

    def __init__(self) -> None:
        self.counts = {"inputs": 0, "shards": 0, "samples": 0}

    def add(self, inputs: int = 0, shards: int = 0, samples: int = 0) -> None:
        self.counts["inputs"] += inputs
        self.counts["shards"] += shards
        self.counts["samples"] += samples

    def get(self) -> dict[str, int]:
        return dict(self.counts)


class InputCounter:
    """In a write task: which inputs have had all their rows (``__input_rows__``) handed over."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def row(self, row: dict[str, Any]) -> int:
        """Count one row; 1 when it completes its input, else 0."""
        input_id = str(row["__input__"])
        self.seen[input_id] = self.seen.get(input_id, 0) + 1
        return int(self.seen[input_id] == int(row["__input_rows__"]))


def progress_line(name: str, counts: dict[str, int], total_inputs: int, bar: bool = False) -> str:
    """``name: done/total inputs, S shards committed, N samples`` (with a 20-wide bar in front when ``bar``)."""
    done = counts.get("inputs", 0)
    text = f"{name}: {done}/{total_inputs} inputs, {counts.get('shards', 0)} shards committed, {counts.get('samples', 0)} samples"
    if not bar:
        return text
    filled = round(20 * done / total_inputs) if total_inputs else 20
    return f"[{'#' * filled}{'.' * (20 - filled)}] {text}"


class RunProgress:
    """Context manager on the driver: a tally actor and a thread that prints its changes."""

    def __init__(self, name: str, total_inputs: int, every_s: float = 5.0) -> None:
        self.name, self.total, self.every_s = name, total_inputs, every_s
        self.tally = ProgressTally.remote()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name=f"{name}-progress")
        self._shown: dict[str, int] | None = None
        self._tty = sys.stdout.isatty()

    def _show(self, final: bool = False) -> None:
        counts = ray.get(self.tally.get.remote())
        if counts == self._shown and not final:
            return
        self._shown = counts
        line = progress_line(self.name, counts, self.total, bar=self._tty)
        if self._tty:
            print(f"\r{line}", end="\n" if final else "", flush=True)
        else:
            print(line, flush=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            self._show()

    def __enter__(self) -> RunProgress:
        print(progress_line(self.name, {}, self.total, bar=False), flush=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._show(final=True)

"""A writer process for the resume tests: ``python -m tests.resume_writer OUT N DELAY``.

Writes N inputs of 3 samples each through the real lifecycle (prepare ->
skip complete inputs -> ShardedWriter with skip keys -> finalize), sleeping
DELAY seconds per input so a test can kill it half-way.
"""

from __future__ import annotations

import sys
import time
from typing import Container

import cv2
import numpy as np

from factory.dataset import finalize, prepare
from factory.rows import rows_for_input
from factory.shards import ShardedWriter, ShardLimits, make_key
from factory.storage import StorageError, open_location

ROWS_PER_INPUT = 3


def sample_rows(input_id: str) -> list[dict]:
    """Three deterministic samples of one input (small real JPEGs of noise)."""
    rng = np.random.default_rng(int(input_id[3:]))
    return [
        {
            "__key__": make_key(input_id, "s", j),
            "jpg": cv2.imencode(".jpg", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))[1].tobytes(),
            "json": {"kind": "test", "input": input_id, "j": j},
        }
        for j in range(ROWS_PER_INPUT)
    ]


LIMITS = ShardLimits(max_samples=4)  # 3 rows per input: inputs straddle shards


def write_inputs(writer: ShardedWriter, complete: Container[str], n_inputs: int, delay_s: float) -> None:
    """Write the inputs not in ``complete``; input 7 is a bad one (an error row)."""
    for i in range(n_inputs):
        item = {"input_id": f"vid{i:03d}", "split": "train" if i % 5 else "test"}
        if item["input_id"] in complete:
            continue
        if i == 7:  # one bad input: an error row, the run goes on
            rows = rows_for_input(item, lambda: (_ for _ in ()).throw(ValueError("corrupt video")))
        else:
            rows = rows_for_input(item, lambda: sample_rows(item["input_id"]))
        writer.write_all(rows)
        time.sleep(delay_s)


def main(out_url: str, n_inputs: int, delay_s: float) -> None:
    out = open_location(out_url)
    with prepare(out, "test", {"n": n_inputs}) as state:
        with state.writer(out, LIMITS) as writer:
            write_inputs(writer, state.complete_inputs, n_inputs, delay_s)
        finalize(out, "test", {"n": n_inputs})


if __name__ == "__main__":
    try:
        main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
    except StorageError as exc:  # what the CLI does: one line, exit 1
        print(f"resume_writer: {exc}", file=sys.stderr)
        sys.exit(1)

"""A zombie writer for the fencing tests, as left behind by a killed driver.

``python -m tests.zombie_writer claim OUT``: claim OUT (prepare) and die at
once, without releasing the claim, like a SIGKILLed driver; prints the epoch.

``python -m tests.zombie_writer write OUT EPOCH HELD RELEASE N``: write the N
test inputs as a writer of EPOCH; after writing its first index file (and
before that shard's commit marker) it touches HELD and waits for RELEASE.
Exits 3 with one line when its commit is fenced out.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from factory.dataset import prepare
from factory.epochs import fenced_allocator, next_numbers
from factory.shards import INDEX_DIR, FencedOut, SequentialAllocator, ShardedWriter
from factory.storage import Location, open_location
from tests.resume_writer import LIMITS, write_inputs


class HeldLocation(Location):
    """A real location that pauses the writer between an index write and its commit."""

    held: Path | None = None
    release: Path | None = None

    def put_bytes(self, rel: str, data: bytes) -> None:
        super().put_bytes(rel, data)
        if rel.startswith(f"{INDEX_DIR}/") and HeldLocation.held and not HeldLocation.held.exists():
            HeldLocation.held.touch()
            while not HeldLocation.release.exists():
                time.sleep(0.02)


def claim(out_url: str) -> None:
    state = prepare(open_location(out_url), "test", {"n": 0})
    print(state.epoch, flush=True)
    os._exit(0)  # dies holding the claim, as a killed driver does


def write(out_url: str, epoch: int, held: str, release: str, n_inputs: int) -> int:
    plain = open_location(out_url)
    out = HeldLocation(plain.fs, plain.root, plain.url, plain.scheme)
    HeldLocation.held, HeldLocation.release = Path(held), Path(release)
    allocate = fenced_allocator(out, epoch, SequentialAllocator(next_numbers(out)))
    try:
        with ShardedWriter(out, allocate, LIMITS, writer_id="zombie", epoch=epoch) as writer:
            write_inputs(writer, set(), n_inputs, 0.0)
    except FencedOut as exc:
        print(f"zombie: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "claim":
        claim(sys.argv[2])
    else:
        sys.exit(write(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])))

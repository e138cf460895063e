"""Shared by the resume tests: kill a run half-way, read what it committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from factory.shards import committed_stats, read_index
from factory.storage import open_location

REPO = Path(__file__).resolve().parents[1]


def kill_half_way(module_args: list[str], url: str, at_least: int, timeout_s: float = 240) -> int:
    """Run ``python -m MODULE ARGS`` in its own process group and SIGKILL the
    whole group (driver, embedded Ray, Blender children) once ``at_least``
    shards under ``url`` are committed. Returns the committed count at the kill."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", *module_args], cwd=REPO, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    out = open_location(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(committed_stats(out)) < at_least and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(committed_stats(out))


def committed_keys(url: str) -> list[str]:
    """Keys of the committed samples (status ok), duplicates kept."""
    index = read_index(open_location(url))
    return [k for k, s in zip(index.column("key").to_pylist(), index.column("status").to_pylist()) if s == "ok"]

"""Who may write under OUT: epochs, the owner's lease, shard claims and void markers.

Each run claims OUT with the next *epoch* and every writer of that run carries
it. The objects, all created with an exclusive create (``O_EXCL``-style link
locally, a conditional PUT ``If-None-Match: *`` on S3)::

    run/epoch-{E:06d}.json       who claimed epoch E (host, pid, run id, time)
    run/alive-{E:06d}.json       the owner's heartbeat, rewritten every HEARTBEAT_S
    claims/{split}-{n:06d}.json  taken by a writer before it writes shard n
    stats/{split}-{n:06d}.json   the commit (factory.shards); a *void* one,
                                 made by a newer epoch, refuses a stale commit

A claim makes a shard number unique across all runs and all time, so a zombie
writer of an old epoch and a writer of the new one never share a file name.
A new epoch voids every claimed number that has no commit yet, before it
reads what is committed: a stale writer's commit then fails at the commit
itself (its exclusive create finds the void marker), and one that claims a
number after that sees the newer epoch and stops.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from factory.shards import (
    INDEX_DIR,
    SHARD_DIR,
    STATS_DIR,
    FencedOut,
    parse_shard_name,
    shard_name,
    void_marker,
)
from factory.storage import Location, StorageError

RUN_DIR, CLAIMS_DIR = "run", "claims"
HEARTBEAT_S = 5.0  # how often the owner renews its lease
LEASE_S = 60.0  # a heartbeat older than this means the owner (on another host) is gone
_MAX_CLAIM_TRIES = 10_000


class OutInUse(StorageError):
    """OUT is owned by another live run; the message names it and how to take over."""


def _epoch_name(epoch: int) -> str:
    return f"{RUN_DIR}/epoch-{epoch:06d}.json"


def _alive_name(epoch: int) -> str:
    return f"{RUN_DIR}/alive-{epoch:06d}.json"


def current_epoch(out: Location) -> int:
    """The highest claimed epoch under OUT (0 for an OUT no run has claimed)."""
    epochs = [0]
    for name in out.list(RUN_DIR):
        if name.startswith("epoch-") and name.endswith(".json"):
            epochs.append(int(name[6:-5]))
    return max(epochs)


def known_epochs(out: Location) -> set[int]:
    """Every epoch recorded under OUT."""
    return {int(n[6:-5]) for n in out.list(RUN_DIR) if n.startswith("epoch-") and n.endswith(".json")}


def _machine() -> str:
    """This host and its pid namespace: a pid means the same process only within both."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped answers kill(0) too
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_json(out: Location, rel: str) -> dict | None:
    try:
        data = json.loads(out.read_bytes(rel))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def owner_status(out: Location, epoch: int, now: float | None = None) -> tuple[bool, str]:
    """Whether the owner of ``epoch`` is alive, and a short description of it.

    On this machine the owner's pid answers; elsewhere its heartbeat must be
    younger than :data:`LEASE_S`. A run that ended released its lease.
    """
    now = time.time() if now is None else now
    owner = _read_json(out, _epoch_name(epoch)) or {}
    alive = _read_json(out, _alive_name(epoch)) or {}
    last = float(alive.get("time") or owner.get("started") or 0.0)
    who = f"epoch {epoch}, {owner.get('host', '?')} pid {owner.get('pid', '?')}, heartbeat {max(0.0, now - last):.0f} s ago"
    if alive.get("released"):
        return False, who
    if owner.get("machine") == _machine() and isinstance(owner.get("pid"), int):
        return _pid_alive(owner["pid"]), who
    return now - last < LEASE_S, who


@dataclass
class Lease:
    """This run's epoch and the heartbeat that keeps it alive while the run lives."""

    out: Location
    epoch: int
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _beat(self, released: bool = False) -> None:
        body = {"epoch": self.epoch, "time": time.time(), "released": released}
        self.out.put_bytes(_alive_name(self.epoch), json.dumps(body).encode())

    def start(self) -> None:
        """Renew the lease every HEARTBEAT_S in a daemon thread (it dies with the process)."""
        self._beat()

        def loop() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    self._beat()
                except StorageError:
                    continue  # a missed beat is retried; the lease is generous

        self._thread = threading.Thread(target=loop, name=f"lease-{self.epoch}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and mark the lease released, so the next run need not wait."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if current_epoch(self.out) == self.epoch:
                self._beat(released=True)
        except StorageError:
            pass  # the store is unreachable: the lease lapses on its own after LEASE_S


def claim_out(out: Location, force: bool = False) -> Lease:
    """Claim OUT with a new epoch; refuse while another live run owns it (unless ``force``)."""
    previous = current_epoch(out)
    if previous and not force:
        alive, who = owner_status(out, previous)
        if alive:
            raise OutInUse(
                f"{out.url} is owned by a live run ({who}); wait for it, rerun with --resume once it has "
                f"died (its lease lapses {LEASE_S:.0f} s after its last heartbeat), or pass --force-takeover"
            )
    epoch = previous + 1
    owner = {
        "epoch": epoch,
        "run_id": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "machine": _machine(),
        "pid": os.getpid(),
        "started": time.time(),
        "took_over": previous if force else None,
    }
    try:
        out.create_exclusive(_epoch_name(epoch), json.dumps(owner, indent=1).encode())
    except FileExistsError:
        raise OutInUse(
            f"another run claimed {out.url} at the same moment (epoch {epoch}); wait for it, or rerun with "
            "--resume once it has died"
        ) from None
    lease = Lease(out, epoch)
    lease.start()
    return lease


def check_epoch(out: Location, epoch: int) -> None:
    """Raise :class:`FencedOut` when a newer epoch than ``epoch`` has claimed OUT."""
    newest = current_epoch(out)
    if newest != epoch:
        raise FencedOut(f"{out.url} was claimed by epoch {newest}; this writer of epoch {epoch} stops")


def fenced_allocator(out: Location, epoch: int, candidate: Callable[[str], int]) -> Callable[[str], int]:
    """An allocator for :class:`~factory.shards.ShardedWriter` that claims each shard number.

    ``candidate(split)`` proposes numbers (a counter); a number some other
    writer, of any epoch, has claimed is skipped. After the claim the epoch is
    checked: a claim made after a newer epoch started stops the writer.
    """

    def allocate(split: str) -> int:
        for _ in range(_MAX_CLAIM_TRIES):
            n = candidate(split)
            try:
                out.create_exclusive(f"{CLAIMS_DIR}/{shard_name(split, n, 'json')}", json.dumps({"epoch": epoch}).encode())
            except FileExistsError:
                continue
            check_epoch(out, epoch)
            return n
        raise StorageError(f"{out.url}: no free shard number for '{split}' after {_MAX_CLAIM_TRIES} tries")

    return allocate


def _numbers(out: Location, folder: str) -> set[tuple[str, int]]:
    found = set()
    for name in out.list(folder):
        parsed = parse_shard_name(name)
        if parsed:
            found.add((parsed[0], parsed[1]))
    return found


def void_uncommitted(out: Location, epoch: int) -> list[tuple[str, int]]:
    """Put a void marker on every shard number that was claimed or written but not committed.

    Run by a new epoch before it reads what is committed. A writer that
    commits first keeps its (complete) shard; one that comes later is refused.
    """
    committed = _numbers(out, STATS_DIR)
    seen = _numbers(out, CLAIMS_DIR) | _numbers(out, SHARD_DIR) | _numbers(out, INDEX_DIR)
    voided = []
    for split, n in sorted(seen - committed):
        try:
            out.create_exclusive(f"{STATS_DIR}/{shard_name(split, n, 'json')}", void_marker(split, n, epoch))
        except FileExistsError:
            continue  # its writer committed in between: a whole shard, kept
        voided.append((split, n))
    return voided


def sweep(out: Location, void: set[tuple[str, int]]) -> list[str]:
    """Delete the tar and index of void shard numbers, and every temp file.

    Safe at any time no writer of the *current* epoch runs (before its writers
    start, after they end): void numbers belong to stale epochs only.
    """
    removed = []
    for folder in (SHARD_DIR, INDEX_DIR, STATS_DIR, CLAIMS_DIR):
        for name in out.list(folder):
            parsed = parse_shard_name(name)
            stale_file = folder in (SHARD_DIR, INDEX_DIR) and parsed and (parsed[0], parsed[1]) in void
            if name.startswith(".tmp-") or stale_file:
                out.remove(f"{folder}/{name}")
                removed.append(f"{folder}/{name}")
    return removed


def next_numbers(out: Location) -> dict[str, int]:
    """Per split, one past the highest shard number any file under OUT uses."""
    top: dict[str, int] = {}
    for folder in (STATS_DIR, CLAIMS_DIR, SHARD_DIR, INDEX_DIR):
        for split, n in _numbers(out, folder):
            top[split] = max(top.get(split, 0), n + 1)
    return top

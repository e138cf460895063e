"""The life of one OUT folder: claim it, resume it, and finalize it.

``prepare`` runs once on the driver before any worker writes: it refuses an OUT
that holds something other than a factory dataset of the same pipeline or that
a live run owns, claims OUT with a new epoch (:mod:`factory.epochs`), voids and
removes shards that were never committed (a killed run, its zombie writers),
and loads what earlier runs committed. ``finalize`` runs once after the workers: it writes
``errors.parquet`` and ``dataset.json`` with the counts.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from factory.epochs import (
    CLAIMS_DIR,
    RUN_DIR,
    Lease,
    claim_out,
    fenced_allocator,
    known_epochs,
    next_numbers,
    sweep,
    void_uncommitted,
)
from factory.shards import (
    INDEX_DIR,
    SHARD_DIR,
    STATS_DIR,
    SPLITS,
    SequentialAllocator,
    ShardedWriter,
    ShardLimits,
    committed_stats,
    parquet_from_bytes,
    read_index,
    read_markers,
    read_shard_index,
    shard_name,
)
from factory import provenance
from factory.provenance import INPUTS_PARQUET
from factory.storage import Location, StorageError

FORMAT = "anime-factory/1"
DATASET_JSON = "dataset.json"
ERRORS_PARQUET = "errors.parquet"
# Top-level names a factory OUT may hold; anything else means a foreign folder.
_OUR_NAMES = {SHARD_DIR, INDEX_DIR, STATS_DIR, RUN_DIR, CLAIMS_DIR, DATASET_JSON, ERRORS_PARQUET, INPUTS_PARQUET, "report", "tracks.parquet"}  # tracks.parquet: `factory characters`
ERRORS_SCHEMA = pa.schema(
    [("key", pa.string()), ("input_id", pa.string()), ("url", pa.string()), ("split", pa.string()),
     ("shard", pa.int32()), ("status", pa.string()), ("stage", pa.string()), ("error_class", pa.string()),
     ("error", pa.string()), ("reason", pa.string())]
)


class DatasetError(StorageError):
    """OUT cannot be used for this run; the message says why and what to do."""


@dataclass
class ResumeState:
    """What earlier runs committed under OUT."""

    committed_keys: frozenset[str] = frozenset()
    complete_inputs: frozenset[str] = frozenset()
    next_shard: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    removed_leftovers: list[str] = field(default_factory=list)
    epoch: int = 0  # this run's claim on OUT; its writers carry it
    lease: Lease | None = None  # the heartbeat; released when the run ends

    def writer(self, out: Location, limits: ShardLimits = ShardLimits(), writer_id: str = "writer") -> ShardedWriter:
        """A single-process writer of this run: fenced by its epoch, numbers claimed, committed keys skipped."""
        allocate = fenced_allocator(out, self.epoch, SequentialAllocator(self.next_shard))
        return ShardedWriter(out, allocate, limits, skip_keys=self.committed_keys, writer_id=writer_id, epoch=self.epoch)

    def release(self) -> None:
        """End this run's claim on OUT (its lease stops and is marked released)."""
        if self.lease is not None:
            self.lease.release()

    def __enter__(self) -> "ResumeState":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _top_level_names(out: Location) -> list[str]:
    try:
        entries = out.fs.ls(out.root, detail=False)
    except FileNotFoundError:
        return []
    return sorted(name.rstrip("/").rsplit("/", 1)[-1] for name in entries)


def check_owner(out: Location, pipeline: str) -> dict | None:
    """Refuse an OUT holding foreign files or another pipeline's dataset.

    Returns the existing dataset.json content, or None for a new OUT.
    """
    names = _top_level_names(out)
    foreign = [n for n in names if n not in _OUR_NAMES and not n.startswith(".tmp-")]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise DatasetError(
            f"{out.url} holds files that are not part of a factory dataset ({shown}); "
            "choose an empty or new output folder"
        )
    if DATASET_JSON not in names:
        if any(n in names for n in (SHARD_DIR, STATS_DIR)):
            raise DatasetError(f"{out.url} has shards but no {DATASET_JSON}; it is not a factory dataset")
        return None
    try:
        info = json.loads(out.read_bytes(DATASET_JSON))
    except ValueError as exc:
        raise DatasetError(f"{out.url}/{DATASET_JSON} is not valid JSON: {exc}") from exc
    if info.get("format") != FORMAT:
        raise DatasetError(f"{out.url} holds a dataset of format {info.get('format')!r}, not {FORMAT}")
    if info.get("pipeline") != pipeline:
        raise DatasetError(
            f"{out.url} holds a '{info.get('pipeline')}' dataset; a '{pipeline}' run needs its own output folder"
        )
    return info


def _check_commits(out: Location, epoch: int) -> None:
    """Each commit must be whole and ours: its tar and index present, its epoch one OUT recorded."""
    stats = committed_stats(out)
    tars, indexes, epochs = set(out.list(SHARD_DIR)), set(out.list(INDEX_DIR)), known_epochs(out)
    for st in stats:
        marker = f"{out.url}: {STATS_DIR}/{shard_name(st.split, st.shard, 'json')}"
        missing = [f"{d}/{n}" for d, n, have in ((SHARD_DIR, st.name, tars), (INDEX_DIR, shard_name(st.split, st.shard, "parquet"), indexes)) if n not in have]
        if missing:
            raise DatasetError(f"{marker} commits a shard whose {' and '.join(missing)} is missing; delete that marker to redo the shard")
        if st.epoch and (st.epoch > epoch or st.epoch not in epochs):
            raise DatasetError(f"{marker} was committed by epoch {st.epoch}, which this OUT never recorded; it mixes in a foreign dataset")


def load_resume_state(out: Location, epoch: int = 0) -> ResumeState:
    """Committed keys, inputs whose rows are all committed, and the next free shard numbers.

    A damaged dataset (a marker without its files, an unreadable index, a
    commit of an epoch OUT never recorded) is one :class:`DatasetError` line.
    """
    _check_commits(out, epoch)
    try:
        tables = [read_shard_index(out, st) for st in committed_stats(out)]
    except StorageError as exc:
        raise DatasetError(str(exc)) from None
    index = pa.concat_tables(tables) if tables else pa.table({"key": [], "input_id": [], "input_rows": []})
    keys = frozenset(index.column("key").to_pylist())
    counts = collections.Counter(index.column("input_id").to_pylist())
    expected = dict(zip(index.column("input_id").to_pylist(), index.column("input_rows").to_pylist()))
    complete = frozenset(i for i, n in counts.items() if n >= expected[i])
    next_shard = {s: 0 for s in SPLITS} | next_numbers(out)
    return ResumeState(committed_keys=keys, complete_inputs=complete, next_shard=next_shard, epoch=epoch)


def prepare(
    out: Location, pipeline: str, config: dict[str, Any], resume: bool = True, takeover: bool = False
) -> ResumeState:
    """Claim OUT for ``pipeline`` with a new epoch and return what earlier runs committed.

    With ``resume=False`` an OUT that already holds a dataset is refused
    instead of continued. An OUT a live run owns is refused unless
    ``takeover``; taking over fences the old run's writers out. Use the
    state as a context manager (or call ``release()``) to end the claim.
    """
    out.ensure_writable()
    existing = check_owner(out, pipeline)
    if existing is not None and not resume:
        raise DatasetError(f"{out.url} already holds a '{pipeline}' dataset; pass --resume to continue it")
    lease = claim_out(out, force=takeover)
    try:
        void_uncommitted(out, lease.epoch)
        removed = sweep(out, read_markers(out)[1])
        state = load_resume_state(out, lease.epoch)
        state.removed_leftovers, state.lease = removed, lease
        info = existing or {"format": FORMAT, "pipeline": pipeline}
        info.update({"status": "running", "config": config})
        out.put_bytes(DATASET_JSON, json.dumps(info, indent=1, sort_keys=True, default=str).encode())
    except BaseException:
        lease.release()
        raise
    return state


def _error_rows(index: pa.Table, urls: dict[str, str]) -> pa.Table:
    """errors.parquet: one row per failed or empty input row, with its URL, stage, class and message or reason."""
    rows = []
    for row in index.filter(pc.is_in(index.column("status"), pa.array(["error", "empty"]))).to_pylist():
        try:
            meta = json.loads(row["json"]) if row["json"] else {}
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        rows.append({
            "key": row["key"], "input_id": row["input_id"], "url": urls.get(row["input_id"]) or meta.get("source_url"),
            "split": row["split"], "shard": row["shard"], "status": row["status"],
            "stage": meta.get("stage"), "error_class": meta.get("error_class"), "error": row["error"],
            "reason": meta.get("reason"),
        })
    return pa.Table.from_pylist(rows, schema=ERRORS_SCHEMA)


def finalize(
    out: Location,
    pipeline: str,
    config: dict[str, Any],
    models: dict | None = None,
    inputs: list[tuple[str, str]] | None = None,
    started: str | None = None,
) -> dict:
    """Write errors.parquet, inputs.parquet and dataset.json from the committed shards; return dataset.json.

    ``inputs`` are this run's (input_id, URL or path) pairs; ``started`` its
    start time (:func:`factory.provenance.utc_now`). What dataset.json holds:
    docs/RELIABILITY.md "What a dataset records".
    """
    index = read_index(out)
    manifest = provenance.inputs_table(index.to_pylist(), inputs or ())
    urls = {r["input_id"]: r["url"] for r in manifest.to_pylist() if r["url"]}
    problems = _error_rows(index, urls)
    out.put_bytes(ERRORS_PARQUET, provenance.parquet_bytes(problems))
    out.put_bytes(provenance.INPUTS_PARQUET, provenance.parquet_bytes(manifest))
    stats = committed_stats(out)
    ok = index.filter(pc.equal(index.column("status"), "ok"))
    statuses = collections.Counter(manifest.column("status").to_pylist())
    info = {
        "format": FORMAT,
        "pipeline": pipeline,
        "status": "complete",
        "config": config,
        "command": provenance.command(),
        "code": provenance.code_version(),
        "started": started,
        "finished": provenance.utc_now(),
        "versions": provenance.tool_versions(),
        "models": {**provenance.models_used(ok.column("json").to_pylist()), **(models or {})},
        "inputs": {"manifest": provenance.INPUTS_PARQUET, "count": manifest.num_rows, "per_status": dict(statuses)},
        "counts": {
            "shards": len(stats),
            "samples": sum(s.samples for s in stats),
            "errors": int(pc.sum(pc.equal(problems.column("status"), "error")).as_py() or 0),
            "empty": int(pc.sum(pc.equal(problems.column("status"), "empty")).as_py() or 0),
            "inputs": len(set(index.column("input_id").to_pylist())),
            "bytes": sum(s.bytes for s in stats),
            "per_split": dict(collections.Counter(ok.column("split").to_pylist())),
            "per_kind": dict(collections.Counter(k or "unknown" for k in ok.column("kind").to_pylist())),
        },
    }
    out.put_bytes(DATASET_JSON, json.dumps(info, indent=1, sort_keys=True, default=str).encode())
    return info


def read_errors(out: Location, include_empty: bool = False) -> pa.Table:
    """The error rows of errors.parquet (with ``include_empty``, the inputs that gave no sample too)."""
    table = parquet_from_bytes(out.read_bytes(ERRORS_PARQUET))
    if include_empty or "status" not in table.column_names:
        return table
    return table.filter(pc.equal(table.column("status"), "error"))

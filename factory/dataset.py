"""The life of one OUT folder: claim it, resume it, and finalize it.

``prepare`` runs once on the driver before any worker writes: it refuses an OUT
that holds something other than a factory dataset of the same pipeline, removes
leftovers of shards that were never committed (a killed run), and loads what
earlier runs committed. ``finalize`` runs once after the workers: it writes
``errors.parquet`` and ``dataset.json`` with the counts.
"""

from __future__ import annotations

import collections
import io
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from factory.shards import (
    INDEX_DIR,
    SHARD_DIR,
    STATS_DIR,
    SPLITS,
    committed_stats,
    parquet_from_bytes,
    parse_shard_name,
    read_index,
)
from factory.storage import Location, StorageError

FORMAT = "anime-factory/1"
DATASET_JSON = "dataset.json"
ERRORS_PARQUET = "errors.parquet"
# Top-level names a factory OUT may hold; anything else means a foreign folder.
_OUR_NAMES = {SHARD_DIR, INDEX_DIR, STATS_DIR, DATASET_JSON, ERRORS_PARQUET, "report", "tracks.parquet"}  # tracks.parquet: `factory characters`
_VERSIONED = ("anime-factory", "ray", "numpy", "pyarrow", "webdataset", "torch", "mediapipe", "bpy")


class DatasetError(StorageError):
    """OUT cannot be used for this run; the message says why and what to do."""


@dataclass
class ResumeState:
    """What earlier runs committed under OUT."""

    committed_keys: frozenset[str] = frozenset()
    complete_inputs: frozenset[str] = frozenset()
    next_shard: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    removed_leftovers: list[str] = field(default_factory=list)


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


def _remove_leftovers(out: Location, committed: set[tuple[str, int]]) -> list[str]:
    """Delete shard/index files (and temp files) that no stats file commits."""
    removed = []
    for folder in (SHARD_DIR, INDEX_DIR):
        for name in out.list(folder):
            parsed = parse_shard_name(name)
            if name.startswith(".tmp-") or (parsed and (parsed[0], parsed[1]) not in committed):
                out.remove(f"{folder}/{name}")
                removed.append(f"{folder}/{name}")
    for name in out.list(STATS_DIR):
        if name.startswith(".tmp-"):
            out.remove(f"{STATS_DIR}/{name}")
    return removed


def load_resume_state(out: Location) -> ResumeState:
    """Committed keys, inputs whose rows are all committed, and the next free shard numbers."""
    stats = committed_stats(out)
    next_shard = {s: 0 for s in SPLITS}
    for st in stats:
        next_shard[st.split] = max(next_shard[st.split], st.shard + 1)
    index = read_index(out)
    keys = frozenset(index.column("key").to_pylist())
    counts = collections.Counter(index.column("input_id").to_pylist())
    expected = dict(zip(index.column("input_id").to_pylist(), index.column("input_rows").to_pylist()))
    complete = frozenset(i for i, n in counts.items() if n >= expected[i])
    return ResumeState(committed_keys=keys, complete_inputs=complete, next_shard=next_shard)


def prepare(out: Location, pipeline: str, config: dict[str, Any], resume: bool = True) -> ResumeState:
    """Claim OUT for ``pipeline`` and return what earlier runs committed.

    With ``resume=False`` an OUT that already holds a dataset is refused
    instead of continued.
    """
    out.ensure_writable()
    existing = check_owner(out, pipeline)
    if existing is not None and not resume:
        raise DatasetError(f"{out.url} already holds a '{pipeline}' dataset; pass --resume to continue it")
    committed = {(s.split, s.shard) for s in committed_stats(out)}
    removed = _remove_leftovers(out, committed)
    state = load_resume_state(out)
    state.removed_leftovers = removed
    info = existing or {"format": FORMAT, "pipeline": pipeline}
    info.update({"status": "running", "config": config})
    out.put_bytes(DATASET_JSON, json.dumps(info, indent=1, sort_keys=True, default=str).encode())
    return state


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the output, for dataset.json."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def finalize(out: Location, pipeline: str, config: dict[str, Any], models: dict | None = None) -> dict:
    """Write errors.parquet and dataset.json from the committed shards; return dataset.json."""
    index = read_index(out)
    errors = index.filter(pc.equal(index.column("status"), "error")).select(
        ["key", "input_id", "split", "shard", "error"]
    )
    buf = io.BytesIO()
    pq.write_table(errors, buf)
    out.put_bytes(ERRORS_PARQUET, buf.getvalue())
    stats = committed_stats(out)
    ok = index.filter(pc.equal(index.column("status"), "ok"))
    info = {
        "format": FORMAT,
        "pipeline": pipeline,
        "status": "complete",
        "config": config,
        "versions": package_versions(),
        "models": models or {},
        "counts": {
            "shards": len(stats),
            "samples": sum(s.samples for s in stats),
            "errors": errors.num_rows,
            "inputs": len(set(index.column("input_id").to_pylist())),
            "bytes": sum(s.bytes for s in stats),
            "per_split": dict(collections.Counter(ok.column("split").to_pylist())),
            "per_kind": dict(collections.Counter(k or "unknown" for k in ok.column("kind").to_pylist())),
        },
    }
    out.put_bytes(DATASET_JSON, json.dumps(info, indent=1, sort_keys=True, default=str).encode())
    return info


def read_errors(out: Location) -> pa.Table:
    """errors.parquet of a finalized dataset."""
    return parquet_from_bytes(out.read_bytes(ERRORS_PARQUET))

"""`factory inspect`: a summary of the committed shards under a dataset URL."""

from __future__ import annotations

import collections
import json
from dataclasses import asdict, dataclass, field

from factory.dataset import DATASET_JSON, DatasetError
from factory.shards import SHARD_DIR, committed_stats, parse_shard_name, read_index
from factory.storage import Location


@dataclass(frozen=True)
class Summary:
    """What a dataset holds, counted from committed shards only."""

    url: str
    pipeline: str | None
    status: str | None
    shards: int
    samples: int
    bytes: int
    errors: int
    empty_inputs: int
    inputs: int
    splits: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    uncommitted_shards: int = 0

    def to_text(self) -> str:
        """Human-readable lines."""
        lines = [
            f"dataset    {self.url}",
            f"pipeline   {self.pipeline or '?'} ({self.status or 'no dataset.json'})",
            f"shards     {self.shards} committed" + (f", {self.uncommitted_shards} uncommitted" if self.uncommitted_shards else ""),
            f"samples    {self.samples}",
            f"bytes      {self.bytes} ({self.bytes / 1e6:.1f} MB)",
            f"inputs     {self.inputs} ({self.errors} errors, {self.empty_inputs} with no sample)",
            "splits     " + (", ".join(f"{k}={v}" for k, v in sorted(self.splits.items())) or "-"),
            "kinds      " + (", ".join(f"{k}={v}" for k, v in sorted(self.kinds.items())) or "-"),
        ]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def summarize(out: Location) -> Summary:
    """Count shards, samples, bytes, kinds, splits and errors of committed shards."""
    info = json.loads(out.read_bytes(DATASET_JSON)) if out.exists(DATASET_JSON) else {}
    stats = committed_stats(out)
    if not info and not stats:
        raise DatasetError(f"no factory dataset at {out.url} (no {DATASET_JSON}, no committed shards)")
    committed = {(s.split, s.shard) for s in stats}
    present = {p[:2] for p in map(parse_shard_name, out.list(SHARD_DIR)) if p}
    index = read_index(out)
    status = index.column("status").to_pylist()
    ok = [i for i, s in enumerate(status) if s == "ok"]
    splits = collections.Counter(index.column("split").to_pylist()[i] for i in ok)
    kinds = collections.Counter(index.column("kind").to_pylist()[i] or "unknown" for i in ok)
    return Summary(
        url=out.url,
        pipeline=info.get("pipeline"),
        status=info.get("status"),
        shards=len(stats),
        samples=sum(s.samples for s in stats),
        bytes=sum(s.bytes for s in stats),
        errors=status.count("error"),
        empty_inputs=status.count("empty"),
        inputs=len(set(index.column("input_id").to_pylist())),
        splits=dict(splits),
        kinds=dict(kinds),
        uncommitted_shards=len(present - committed),
    )


__all__ = ["Summary", "summarize"]

"""Reading a dataset for export: committed samples of the kinds a layout takes.

One reader for every layout: the kinds present are checked from the index
parquet first (cheap, no tar read), so an empty dataset or one of the wrong
kind ends in one clear line before anything is written. Samples then stream
from the shards as :class:`ExportSample` (key, kind, parsed json, members).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from factory.members import unpack
from factory.shards import iter_samples, read_index
from factory.storage import Location

# Members holding a face image, in the order a sample's faces are numbered.
_EXTRA_FACE = re.compile(r"^face(\d+)\.(jpg|png)$")
_EXTRA_VOICE = re.compile(r"^voice(\d+)\.wav$")


class ExportError(ValueError):
    """The export cannot be made; the message says why in one line."""


@dataclass(frozen=True)
class ExportSample:
    """One committed sample: its key, kind, json fields and member bytes."""

    key: str
    kind: str
    meta: dict[str, Any]
    members: dict[str, bytes]

    def field(self, name: str) -> Any:
        """A json field, or the label of that name (``labels.{name}``); None when absent."""
        if name in self.meta:
            return self.meta[name]
        return (self.meta.get("labels") or {}).get(name)


def check_kinds(loc: Location, kinds: tuple[str, ...], layout: str) -> Counter:
    """Counts of committed samples per kind; raise unless some are of ``kinds``."""
    index = read_index(loc).to_pylist()
    found = Counter(row["kind"] for row in index if row["status"] == "ok")
    if not found:
        raise ExportError(f"{loc.url} holds no committed samples (run a pipeline into it first)")
    if not any(found[k] for k in kinds):
        held = ", ".join(f"{n} {k}" for k, n in sorted(found.items(), key=lambda kv: str(kv[0])))
        raise ExportError(f"layout {layout} reads {' or '.join(kinds)} samples; {loc.url} holds {held}")
    return found


def read_samples(loc: Location, kinds: tuple[str, ...]) -> Iterator[ExportSample]:
    """Committed samples of the given kinds, in shard order."""
    for raw in iter_samples(loc):
        if "json" not in raw:
            continue
        meta = json.loads(raw["json"])
        if meta.get("kind") in kinds:
            # faces.jpg / voice unpacked to jpg, face1.jpg.., wav, voice1.wav.. (factory/members.py)
            members = unpack({k: v for k, v in raw.items() if not k.startswith("__")}, meta)
            yield ExportSample(raw["__key__"], meta["kind"], meta, members)


def face_members(sample: ExportSample) -> list[str]:
    """Member names of the sample's face images, first face first.

    A character lists its faces (``faces[].file``); a video face track has
    ``jpg`` then ``face1.jpg``..; a render has its ``png``.
    """
    return _members(sample, "faces", ("png", "jpg"), _EXTRA_FACE)


def voice_members(sample: ExportSample) -> list[str]:
    """Member names of the sample's voice clips: ``voices[].file``, else ``wav``, ``voice1.wav``.."""
    return _members(sample, "voices", ("wav",), _EXTRA_VOICE)


def _members(sample: ExportSample, listing: str, main: tuple[str, ...], extra: re.Pattern) -> list[str]:
    listed = [f["file"] for f in sample.meta.get(listing) or [] if f.get("file") in sample.members]
    if listed:
        return listed
    numbered = sorted((int(m.group(1)), name) for name in sample.members if (m := extra.match(name)))
    return [m for m in main if m in sample.members] + [name for _, name in numbered]


def extension(member: str) -> str:
    """File extension of a member name: ``jpg`` for ``jpg`` and ``face1.jpg``."""
    return member.rsplit(".", 1)[-1]

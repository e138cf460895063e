"""A Hugging Face ``datasets`` feature spec for one dataset, from its index.

``datasets.load_dataset("webdataset", ...)`` infers its schema from the
first 5 samples. Every sample of a kind has the same members and json keys
(docs/SAMPLES.md), but a json value that is null in those 5 and set later
(a track's voice ``start_s`` when the first tracks are silent) cannot be
inferred that way. :func:`features` reads the json of every committed sample
from the index parquet (no tar is read) and gives the spec to pass::

    datasets.load_dataset("webdataset", data_dir=f"{out}/shards", features=features(open_location(out)))

``datasets`` is imported only here, so the factory runs without it.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from factory.shards import read_index
from factory.storage import Location

_IMAGE = ("jpg", "jpeg", "png", "webp")
_VIDEO = ("mp4", "mkv", "avi", "mov", "webm")
_TEXT = ("txt",)


def _member_feature(name: str, datasets: Any) -> Any:
    ext = name.rsplit(".", 1)[-1].lower()
    if ext in _IMAGE:
        return datasets.Image()
    if ext in _VIDEO:
        return datasets.Video()
    if ext in _TEXT:
        return datasets.Value("string")
    return datasets.Value("binary")  # voice (WAV bytes), npy and anything else: bytes as stored


def features(out: Location) -> Any:
    """``datasets.Features`` of the committed samples: members by extension, json from all samples."""
    import datasets

    index = read_index(out)
    ok = index.filter(pc.equal(index.column("status"), "ok"))
    members = sorted({m for row in ok.column("members").to_pylist() for m in (row or "").split(",") if m})
    if not members:
        raise ValueError(f"{out.url} has no committed samples to describe")
    spec = {name: _member_feature(name, datasets) for name in members if name != "json"}
    if "json" in members:
        metas = [json.loads(text) for text in ok.column("json").to_pylist() if text]
        # Arrow infers one type over every sample (null where a key is absent or null).
        table = pa.Table.from_pylist([{"json": m} for m in metas])
        spec["json"] = datasets.Features.from_arrow_schema(table.schema)["json"]
    spec["__key__"] = datasets.Value("string")
    spec["__url__"] = datasets.Value("string")
    return datasets.Features(spec)

"""`animeceleb` layout: ``frontal/`` and ``rotated/`` image folders and one pose CSV.

AnimeCeleb ships two partitions, frontalized-expression and
rotated-expression images, each paired with its pose vector p in R^20 (17
morph weights, then yaw, pitch, roll). Here: ``frontal/{key}.png`` and
``rotated/{key}.png`` (the 256x256 RGBA renders as stored) and ``pose.csv``
with one row per image: ``file`` (path under DIR), ``model_id``, then the 20
pose columns named as in docs/MORPHS.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from factory.export.options import ExportOptions
from factory.export.source import ExportError, read_samples
from factory.export.target import write_csv, write_file
from factory.render.morphs import POSE_NAMES
from factory.storage import Location

KINDS = ("render",)
PARTITIONS = ("frontal", "rotated")
POSE_CSV = "pose.csv"
COLUMNS = ("file", "model_id", *POSE_NAMES)


def write(data: Location, root: Path, options: ExportOptions) -> dict[str, Any]:
    """Write the partition folders and ``pose.csv``; returns images per partition."""
    rows: list[list[Any]] = []
    per_partition: Counter = Counter()
    skipped = 0
    for sample in read_samples(data, KINDS):
        partition, pose = sample.meta.get("partition"), sample.meta.get("pose") or []
        if partition not in PARTITIONS or len(pose) != len(POSE_NAMES) or "png" not in sample.members:
            skipped += 1  # not a pose-annotated render
            continue
        rel = f"{partition}/{sample.key}.png"
        write_file(root, rel, sample.members["png"])
        rows.append([rel, sample.meta.get("model_id", ""), *pose])
        per_partition[partition] += 1
    if not rows:
        raise ExportError("no render sample has a frontal/rotated partition and a 20-value pose")
    write_csv(root, POSE_CSV, COLUMNS, rows)
    return {"images": dict(sorted(per_partition.items())), "skipped": skipped}

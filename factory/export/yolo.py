"""`yolo` layout: ``images/{train,val}``, ``labels/{train,val}``, ``data.yaml`` for ultralytics.

The detector trainer's own dataset builder, unchanged: render samples
composited on a random background (seeded, so a rerun writes the same
bytes), one label line per face (``face_boxes``, else ``face_bbox``; none for an image of no face), split by identity (the
samples' own train/test split, else held-out models by a stable hash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from factory.export.options import ExportOptions
from factory.storage import Location
from factory.train.data import identity_split, load_face_samples
from factory.train.detector import YOLO_SPLITS, DetectorConfig, build_yolo_dataset

KINDS = ("render",)


def write(data: Location, root: Path, options: ExportOptions) -> dict[str, Any]:
    """Write the YOLO dataset under ``root``; returns images and models per split."""
    splits = identity_split(load_face_samples(data.url, KINDS, faceless=True), options.test_fraction, options.seed)
    build_yolo_dataset(splits, root, DetectorConfig(seed=options.seed, test_fraction=options.test_fraction))
    return {
        YOLO_SPLITS[side]: {"images": len(items), "models": len({s.model_id for s in items})}
        for side, items in splits.items()
    }

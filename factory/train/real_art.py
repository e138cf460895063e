"""Score a face detector on real anime art it never trained on: recall and extra boxes.

A real-art set is a folder of images and a ``boxes.json`` that maps each
image's file name to its face boxes ``[[x0, y0, x1, y1], ...]`` (e.g.
``shared/realdata/anime2d_dev``). Its boxes may miss a few faces, so the
score is recall at an IoU threshold (a true face found or not) and, apart
from it, how many detections per image match no listed face ("extra"):
some of those may be real faces the list lacks.

Only ever evaluate on such a set: a detector tuned on it would be measured on
its own training data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from factory.boxes import greedy_pairs

Box = Sequence[float]
BOXES_FILE = "boxes.json"


class RealArtError(ValueError):
    """A real-art folder that cannot be read; the message is one line."""


@dataclass(frozen=True)
class RealArtImage:
    name: str
    rgb: np.ndarray
    boxes: list[list[float]]


@dataclass(frozen=True)
class RealArtScore:
    """Recall at ``iou``, extra boxes per image, and the counts behind them."""

    recall: float
    extra_per_image: float
    faces: int
    found: int
    extra: int
    images: int
    iou: float

    def to_json(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def load_real_art(folder: str | Path) -> list[RealArtImage]:
    """The images of a real-art folder with their listed face boxes, sorted by name."""
    folder = Path(folder)
    try:
        listing = json.loads((folder / BOXES_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RealArtError(f"{folder}: no readable {BOXES_FILE} ({type(exc).__name__}: {exc})") from None
    if not isinstance(listing, dict) or not listing:
        raise RealArtError(f"{folder / BOXES_FILE}: expected {{image name: [[x0, y0, x1, y1], ...]}}")
    images = []
    for name in sorted(listing):
        path = folder / Path(name).name  # a listed name never leaves the folder
        try:
            rgb = np.asarray(Image.open(path).convert("RGB"))
        except OSError as exc:
            raise RealArtError(f"{path}: cannot read image ({exc})") from None
        images.append(RealArtImage(path.name, rgb, [[float(v) for v in box] for box in listing[name]]))
    return images


def match(truth: Sequence[Box], found: Sequence[Box], threshold: float) -> tuple[int, int]:
    """(true faces found, detections matching no face): greedy one-to-one matching, best IoU first."""
    hits = len(greedy_pairs(truth, found, threshold))
    return hits, len(found) - hits


def score(truth: Sequence[Sequence[Box]], found: Sequence[Sequence[Box]], threshold: float = 0.5) -> RealArtScore:
    """Recall and extra boxes per image over a set: ``truth[i]`` and ``found[i]`` are image i's boxes."""
    if len(truth) != len(found):
        raise ValueError(f"{len(truth)} images of truth but {len(found)} of detections")
    hits = extras = 0
    for t, f in zip(truth, found):
        h, e = match(t, f, threshold)
        hits, extras = hits + h, extras + e
    faces = sum(len(t) for t in truth)
    return RealArtScore(
        recall=hits / faces if faces else 0.0,
        extra_per_image=extras / len(truth) if truth else 0.0,
        faces=faces, found=hits, extra=extras, images=len(truth), iou=threshold,
    )


def score_detector(detector, images: Sequence[RealArtImage], threshold: float = 0.5) -> RealArtScore:
    """Run a detector (``actors.detection`` interface) over the images and score its boxes."""
    found = [[d.bbox for d in faces] for faces in detector([image.rgb for image in images])]
    return score([image.boxes for image in images], found, threshold)

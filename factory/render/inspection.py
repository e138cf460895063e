"""Render-diff inspection of a morph: how many pixels change, and where.

Pure numpy over two RGBA images (neutral and morph at weight 1) and the face
box, so it is testable without Blender. AnimeCeleb inspected its morph
annotation by eye; this flags what a person should look at: morphs that move
nothing, move mostly outside the face, or move the wrong part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factory.render.jobs import InspectionSettings


@dataclass(frozen=True)
class PixelChange:
    """Where two renders differ."""

    changed_pixels: int
    changed_face: float
    outside_share: float
    centroid_v: float | None


def pixel_change(neutral: np.ndarray, morphed: np.ndarray, face_bbox, threshold: int) -> PixelChange:
    """Compare two (H, W, 4) uint8 renders inside and outside face_bbox [x0, y0, x1, y1]."""
    if neutral.shape != morphed.shape:
        raise ValueError(f"image shapes differ: {neutral.shape} vs {morphed.shape}")
    changed = (np.abs(neutral.astype(np.int16) - morphed.astype(np.int16)) > threshold).any(axis=2)
    h, w = changed.shape
    x0, y0, x1, y1 = face_bbox
    cols, rows = np.arange(w) + 0.5, np.arange(h) + 0.5
    inside = ((rows >= y0) & (rows <= y1))[:, None] & ((cols >= x0) & (cols <= x1))[None, :]
    total = int(changed.sum())
    in_face = changed & inside
    ys = np.nonzero(in_face)[0]
    centroid = float((ys.mean() + 0.5 - y0) / max(y1 - y0, 1e-6)) if len(ys) else None
    return PixelChange(
        changed_pixels=total,
        changed_face=float(in_face.sum() / max(inside.sum(), 1)),
        outside_share=float((total - in_face.sum()) / total) if total else 0.0,
        centroid_v=centroid,
    )


def flag_change(change: PixelChange, part: str | None, settings: InspectionSettings) -> str:
    """ok, dead (nothing moves), outside_face, or wrong_part (the change sits off the part's band)."""
    if change.changed_pixels < settings.min_changed_pixels:
        return "dead"
    if change.outside_share > settings.max_outside_share:
        return "outside_face"
    bands = {name: (low, high) for name, low, high in settings.bands}
    if part in bands and change.centroid_v is not None:
        low, high = bands[part]
        if not low <= change.centroid_v <= high:
            return "wrong_part"
    return "ok"

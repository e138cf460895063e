"""Axis-aligned [x0, y0, x1, y1] boxes: overlap and one-to-one pairing (trackers, detectors, scorers)."""

from __future__ import annotations

from collections.abc import Sequence

Box = Sequence[float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def greedy_pairs(a: Sequence[Box], b: Sequence[Box], threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (i, j) of boxes a[i], b[j] with IoU >= threshold, best IoU first."""
    ranked = sorted(((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for value, i, j in ranked:
        if value < threshold:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs

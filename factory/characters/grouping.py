"""Tracks -> characters: agglomerative clustering with cannot-links, confidences, corrections.

Pure functions on arrays, no I/O and no Ray. Tracks are clustered on the
cosine distance of their L2-normalised embeddings with average linkage,
cut at ``threshold``. Two tracks of one video that overlap in time are on
screen together, so they are different characters: their distance is set to
``CANNOT_LINK`` and no cluster holding both can form under any threshold
below ``CANNOT_LINK / (n_a * n_b)``, i.e. for clusters of fewer than ~700
tracks each. Labels are numbered in order of each character's first track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

CANNOT_LINK = 1e6
DEFAULT_THRESHOLD = 0.1  # cosine distance; docs/CHARACTERS.md has the measurements behind it


@dataclass(frozen=True)
class TrackInfo:
    """What grouping needs of one track: where and when it is."""

    key: str
    video_id: str
    start_s: float
    end_s: float


def cannot_link(tracks: Sequence[TrackInfo]) -> np.ndarray:
    """(n, n) bool: the two tracks overlap in time in the same video."""
    n = len(tracks)
    out = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = tracks[i], tracks[j]
            if a.video_id == b.video_id and a.start_s < b.end_s and b.start_s < a.end_s:
                out[i, j] = out[j, i] = True
    return out


def distances(embeddings: np.ndarray, forbidden: np.ndarray | None = None) -> np.ndarray:
    """(n, n) cosine distances of L2-normalised rows; forbidden pairs get ``CANNOT_LINK``."""
    dist = np.clip(1.0 - embeddings @ embeddings.T, 0.0, 2.0).astype(np.float64)
    np.fill_diagonal(dist, 0.0)
    if forbidden is not None:
        dist[forbidden] = CANNOT_LINK
    return dist


def cluster(dist: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Average-linkage clusters cut at ``threshold``; labels 0.. in order of first member."""
    n = len(dist)
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    raw = fcluster(linkage(squareform(dist, checks=False), method="average"), t=threshold, criterion="distance")
    return renumber(raw)


def renumber(labels: Sequence) -> np.ndarray:
    """Labels 0.. in order of each label's first appearance (any hashable labels in)."""
    order: dict = {}
    return np.array([order.setdefault(label.item() if hasattr(label, "item") else label, len(order)) for label in labels], int)


def confidences(dist: np.ndarray, labels: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Per track, how clearly it belongs to its character, 0..1 (a silhouette clipped at 0).

    ``a`` = mean distance to the other members of its cluster, ``b`` = the
    smallest mean distance to another cluster's members (cannot-linked
    clusters count as far). Confidence = (b - a) / max(a, b). With no other
    cluster to compare, ``b`` is the threshold: a member well inside the cut
    is confident.
    """
    dist = np.minimum(dist, 2.0)  # a cannot-link counts as the farthest possible, not as 1e6
    out = np.ones(len(labels))
    for i, own in enumerate(labels):
        same = (labels == own) & (np.arange(len(labels)) != i)
        a = float(dist[i, same].mean()) if same.any() else 0.0
        others = [float(dist[i, labels == c].mean()) for c in np.unique(labels) if c != own]
        b = min(others) if others else threshold
        out[i] = max(0.0, (b - a) / max(a, b)) if max(a, b) > 0 else 1.0
    return np.round(out, 4)


def adjusted_rand_index(truth: Sequence, labels: Sequence) -> float:
    """Adjusted Rand index of two labelings (1: identical partitions, ~0: chance)."""
    from scipy.special import comb

    t = renumber(list(truth))
    p = renumber(list(labels))
    table = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(table, (t, p), 1)
    pairs = comb(table, 2).sum()
    rows, cols = comb(table.sum(1), 2).sum(), comb(table.sum(0), 2).sum()
    total = comb(len(t), 2)
    expected = rows * cols / total if total else 0.0
    best = (rows + cols) / 2
    return 1.0 if best == expected else float((pairs - expected) / (best - expected))

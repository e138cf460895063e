"""Classification metrics: accuracy, per-class recall, confusion matrix (+ PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def confusion(true: Sequence[int], pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``m[t, p]``: how many samples of true class t were predicted p."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return m


def summarize(matrix: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class recall (None for a class absent from the test set), support, matrix."""
    support = matrix.sum(axis=1)
    total = int(support.sum())
    recall = {
        c: (round(float(matrix[i, i] / support[i]), 4) if support[i] else None) for i, c in enumerate(classes)
    }
    return {
        "accuracy": round(float(np.trace(matrix) / total), 4) if total else None,
        "recall": recall,
        "support": {c: int(s) for c, s in zip(classes, support)},
        "confusion": matrix.tolist(),
        "classes": list(classes),
        "chance": round(1.0 / len(classes), 4),
    }


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str, path: Path) -> None:
    """Write the confusion matrix as a PNG (matplotlib Agg: no display, no font download)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=120)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    peak = matrix.max() or 1
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

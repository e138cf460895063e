"""Face embeddings for identity grouping, by name (``EMBEDDINGS``).

- ``hue``: GochiUsa_Faces' baseline, a 32-bin hue histogram of the face
  (pixels with some saturation and brightness only: the black outlines and
  white highlights of anime faces have no meaningful hue; and only inside an
  ellipse where the aligned face and hair are, since the crop's corners show
  the background, which changes from shot to shot);
- ``classifier:NAME[@VERSION]``: the pooled backbone features of a stored
  age/gender classifier (actors/classification.py), offline.

A track's embedding is the mean of its faces' embeddings, L2-normalised, so
cosine distance between tracks is ``1 - a @ b``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np
import torch

HUE_BINS = 32
MIN_SATURATION = 40  # of 255 (OpenCV HSV); below this a pixel's hue is noise
MIN_VALUE = 40
FACE_CENTRE_Y, FACE_AXES = 0.45, (0.40, 0.48)  # of the aligned crop's height / width


class Embedder(Protocol):
    """Faces (RGB uint8) -> one row per face."""

    name: str
    version: str | None

    def __call__(self, faces: Sequence[np.ndarray]) -> np.ndarray: ...


def _face_mask(height: int, width: int) -> np.ndarray:
    """An ellipse inside the aligned crop: face and hair, not the background in its corners."""
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (width // 2, int(height * FACE_CENTRE_Y)), (int(width * FACE_AXES[0]), int(height * FACE_AXES[1])), 0, 0, 360, 1, -1)
    return mask.astype(bool)


class HueEmbedder:
    """32-bin hue histogram per face, L1-normalised (GochiUsa's baseline)."""

    name, version = "hue", None

    def __call__(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for rgb in faces:
            hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
            coloured = (hsv[..., 1] >= MIN_SATURATION) & (hsv[..., 2] >= MIN_VALUE) & _face_mask(*hsv.shape[:2])
            hist, _ = np.histogram(hsv[..., 0][coloured], bins=HUE_BINS, range=(0, 180))
            rows.append(hist / max(hist.sum(), 1))
        return np.asarray(rows, np.float32).reshape(len(rows), HUE_BINS)


class ClassifierEmbedder:
    """Pooled EfficientNet features of a stored classifier (the net's penultimate layer)."""

    def __init__(self, spec: str, store_url: str | None = None) -> None:
        from actors.classification import load_stored_classifier

        self.predictor, stored = load_stored_classifier(spec, store_url)
        self.name, self.version = f"classifier:{stored.ref.name}", str(stored.ref)

    @torch.inference_mode()
    def __call__(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.predictor.net.backbone.num_features), np.float32)
        batch = torch.from_numpy(np.stack([self.predictor.prep(f) for f in faces])).to(self.predictor.device)
        return self.predictor.net.backbone(batch).cpu().numpy().astype(np.float32)


EMBEDDINGS: dict[str, Callable[[str], Embedder]] = {
    "hue": lambda arg: HueEmbedder(),
    "classifier": lambda arg: ClassifierEmbedder(arg),
}
DEFAULT_EMBEDDING = "hue"


def make_embedder(spec: str) -> Embedder:
    """``hue`` or ``classifier:NAME[@VERSION]`` -> an embedder."""
    name, _, arg = spec.partition(":")
    if name not in EMBEDDINGS:
        raise ValueError(f"unknown --embedding {spec!r}; known: hue, classifier:NAME[@VERSION]")
    if name == "classifier" and not arg:
        raise ValueError("--embedding classifier needs a model name: classifier:NAME[@VERSION]")
    return EMBEDDINGS[name](arg)


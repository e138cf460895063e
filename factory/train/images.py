"""Image helpers of the trainers.

Renders are RGBA on a transparent background; models must never learn the
alpha edge, so training composites them on random cluttered backgrounds.
(Faces are cropped by ``factory.video.align.crop_face``, the same way in
training and in serving.)
"""

from __future__ import annotations

import cv2
import numpy as np


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered RGB background: a colour gradient, random shapes and noise."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    img = np.ascontiguousarray((top * (1 - t) + bottom * t).repeat(width, axis=1).astype(np.uint8))
    for _ in range(int(rng.integers(3, 12))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            axes = (int(rng.integers(5, width // 3)), int(rng.integers(5, height // 3)))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            corner = (centre[0] + int(rng.integers(-60, 60)), centre[1] + int(rng.integers(-60, 60)))
            cv2.rectangle(img, centre, corner, colour, int(rng.choice([-1, 2, 4])))
    noise = rng.normal(0.0, float(rng.uniform(0, 12)), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Alpha-blend an RGBA render over an RGB background of the same size."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + background * (1.0 - alpha)).round().astype(np.uint8)


def _plain_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """White, paper or a light pastel: the most common background of anime illustrations."""
    base = rng.integers(215, 256, 3) if rng.random() < 0.7 else rng.integers(150, 256, 3)
    img = np.broadcast_to(base.astype(np.uint8), (height, width, 3)).copy()
    for _ in range(int(rng.integers(0, 6))):  # sparkles, stars, soft blobs
        colour = tuple(int(c) for c in rng.integers(120, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(img, centre, int(rng.integers(2, max(3, width // 8))), colour, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 6)))


def _scenery_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A sky-to-ground gradient with blurred blobs, stripes and a horizon: a painted setting."""
    img = random_background(rng, height, width)
    horizon = int(rng.integers(height // 4, height))
    cv2.rectangle(img, (0, horizon), (width, height), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    for _ in range(int(rng.integers(0, 10))):
        x = int(rng.integers(0, width))
        cv2.line(img, (x, 0), (x + int(rng.integers(-80, 80)), height), tuple(int(c) for c in rng.integers(0, 256, 3)),
                 int(rng.integers(1, 12)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 4)))


def varied_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One of: plain / pastel (40 %), cluttered shapes (30 %), a blurred painted scene (30 %)."""
    pick = rng.random()
    if pick < 0.4:
        return _plain_background(rng, height, width)
    if pick < 0.7:
        return random_background(rng, height, width)
    return _scenery_background(rng, height, width)

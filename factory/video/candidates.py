"""Face candidates of pass 1: the pixels a face's landmarks and alignment need, kept without the frame.

Pass 1 keeps, per sampled frame, a JPEG of the region around the
followed face that both the face mesh crop (`FrontalizerSettings.mesh_margin`)
and the rotated alignment crop (`AlignSettings.crop_margin`) read. After the
tracks are built, only each track's best-ranked candidates (detector score,
then box area) get landmarks: the landmarker and the aligner see the same
region as on the whole frame, in shifted coordinates. JPEG, not PNG: at
720p (325 px faces) a lossless PNG took 15-20 ms per crop to encode (more
than the face mesh), a quality-95 JPEG 1.2 ms and 42 kB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from factory.video.align import FaceLandmarks, square_crop

Point = tuple[float, float]


class Detection(Protocol):
    """What a candidate needs of a detector's face (a dataclass, so `replace` works)."""

    bbox: tuple[float, float, float, float]
    score: float
    area: float
    landmarks: dict[str, tuple[float, ...]]


@dataclass(frozen=True)
class FaceCrop:
    """A JPEG crop of one frame around one face, and where it sat in the frame."""

    jpeg: bytes
    x0: int
    y0: int

    def pixels(self) -> np.ndarray:
        """The crop as RGB uint8."""
        bgr = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def local(self, p: Sequence[float]) -> Point:
        """A frame point in this crop's coordinates."""
        return _move(p, -self.x0, -self.y0)

    def to_crop(self, det: Detection) -> Detection:
        """The detection in this crop's coordinates."""
        moved = {k: p if k.endswith("_size") else self.local(p) for k, p in det.landmarks.items()}  # sizes stay
        return replace(det, bbox=_move_box(det.bbox, -self.x0, -self.y0), landmarks=moved)

    def to_frame(self, marks: FaceLandmarks) -> FaceLandmarks:
        """Landmarks found in this crop, in frame coordinates."""
        dx, dy = self.x0, self.y0
        eyes = (_move(marks.eyes[0], dx, dy), _move(marks.eyes[1], dx, dy))
        nose = None if marks.nose is None else _move(marks.nose, dx, dy)
        mouth = None if marks.mouth is None else _move(marks.mouth, dx, dy)
        return replace(marks, eyes=eyes, nose=nose, mouth=mouth)


def _move(p: Sequence[float], dx: float, dy: float) -> Point:
    return (float(p[0]) + dx, float(p[1]) + dy)


def _move_box(b: Sequence[float], dx: float, dy: float) -> tuple[float, float, float, float]:
    return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


def crop_region(bbox: Sequence[float], mesh_margin: float, align_margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (inside the frame) that hold the mesh square and the alignment crop at any roll.

    The mesh square is the frame-clamped square of side ``mesh_margin`` x the
    box's longer side (`square_crop`, what the face mesh reads); the alignment crop
    is a square of side ``align_margin`` x that side centred on the box,
    rotated by the eye roll, so its half diagonal bounds it. Two pixels more
    for interpolation.
    """
    longer = max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1.0)
    mx, my, side = square_crop(bbox, mesh_margin, width, height)
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    reach = align_margin * longer / math.sqrt(2) + 2
    x0 = max(0, min(mx, math.floor(cx - reach)))
    y0 = max(0, min(my, math.floor(cy - reach)))
    x1 = min(width, max(mx + side, math.ceil(cx + reach)))
    y1 = min(height, max(my + side, math.ceil(cy + reach)))
    return x0, y0, x1, y1


def face_crop(frame: np.ndarray, det: Detection, mesh_margin: float, align_margin: float, quality: int = 95) -> FaceCrop:
    """The crop of ``frame`` that `crop_region` names for ``det``, as JPEG of ``quality``."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = crop_region(det.bbox, mesh_margin, align_margin, w, h)
    bgr = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return FaceCrop(buf.tobytes(), x0, y0)


def ranked(samples: Sequence[int], faces: Sequence[Detection | None]) -> list[int]:
    """Positions into ``samples``, best candidate first: detector score, then box area, then time."""
    def key(i: int) -> tuple[float, float, int]:
        face = faces[samples[i]]
        return (-face.score, -face.area, i) if face is not None else (math.inf, math.inf, i)

    return sorted(range(len(samples)), key=key)

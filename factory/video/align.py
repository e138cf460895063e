"""Face alignment and frontal choice (method A, step 5): pure geometry over landmarks.

Method A keeps the most frontal, expressionless frames of a character,
rotates each so the line through both eyes is horizontal, crops it (128x128)
and drops half-closed eyes and non-frontal faces. Here a face's landmarks
(from any source: face mesh, animeface, the detector) give

- the roll: the angle of the eye line; `align_face` rotates about the eye
  midpoint by it and crops a square around the detector's box;
- yaw / pitch estimates (3D landmarks when the source has them, else yaw from
  the nose's offset between the eyes);
- eye openness (eyelid gap / eye width) and mouth openness;
- a frontal score in [0, 1]: cos(yaw) * cos(pitch).

`choose_faces` keeps a track's best 1-5 frames: frontal enough, eyes not
half-closed relative to the track's most open frame (scale-free, so it works
for drawn eyes of any shape), ranked by frontal score, open eyes and a
closed (neutral) mouth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class AlignSettings:
    """Settings of alignment and frontal choice."""

    crop_size: int = 128  # method A: 128x128 faces
    crop_margin: float = 1.25  # crop side = this x the detector box's longer side
    max_yaw_deg: float = 30.0  # non-frontal beyond this
    max_pitch_deg: float = 30.0
    half_closed: float = 0.5  # eyes under this share of the track's widest opening are half-closed
    mouth_weight: float = 0.5  # rank penalty per unit of mouth openness (neutral mouth preferred)
    faces_per_track: int = 5  # method A: 1-5 images per character

    def __post_init__(self) -> None:
        if self.crop_size < 8 or self.crop_margin <= 0 or not 1 <= self.faces_per_track:
            raise ValueError("need crop_size >= 8, crop_margin > 0, faces_per_track >= 1")
        if not 0 <= self.half_closed <= 1:
            raise ValueError("half_closed must be in [0, 1]")


@dataclass(frozen=True)
class FaceLandmarks:
    """Landmarks of one face in source pixels, and what they say about its pose."""

    source: str  # which landmarker produced them
    eyes: tuple[Point, Point]  # image-left eye centre, then image-right
    nose: Point | None = None
    mouth: Point | None = None
    eye_openness: float | None = None  # eyelid gap / eye width, mean of both eyes
    mouth_openness: float | None = None  # lip gap / mouth width
    yaw_deg: float | None = None  # from 3D landmarks when the source has them
    pitch_deg: float | None = None

    def to_json(self) -> dict:
        """JSON-able landmark points (rounded to 0.1 px)."""
        points = {"left_eye": self.eyes[0], "right_eye": self.eyes[1], "nose": self.nose, "mouth": self.mouth}
        return {k: [round(p[0], 1), round(p[1], 1)] for k, p in points.items() if p is not None}


def ordered_eyes(a: Point, b: Point) -> tuple[Point, Point]:
    """The two eye points as (image-left, image-right)."""
    return (a, b) if a[0] <= b[0] else (b, a)


def eye_roll_deg(eyes: tuple[Point, Point]) -> float:
    """Angle of the eye line (image-left to image-right eye); positive = clockwise on screen."""
    (x0, y0), (x1, y1) = eyes
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def nose_yaw_deg(eyes: tuple[Point, Point], nose: Point) -> float:
    """Yaw from how far the nose sits off the eye midpoint along the eye line (0 = frontal)."""
    (x0, y0), (x1, y1) = eyes
    half = math.hypot(x1 - x0, y1 - y0) / 2
    if half == 0:
        return 0.0
    ux, uy = (x1 - x0) / (2 * half), (y1 - y0) / (2 * half)
    offset = ((nose[0] - (x0 + x1) / 2) * ux + (nose[1] - (y0 + y1) / 2) * uy) / half
    return math.degrees(math.asin(max(-1.0, min(1.0, offset))))


def yaw_pitch(marks: FaceLandmarks) -> tuple[float, float | None]:
    """The landmarks' yaw and pitch estimates (yaw from the nose when no 3D estimate exists)."""
    if marks.yaw_deg is not None:
        return marks.yaw_deg, marks.pitch_deg
    yaw = nose_yaw_deg(marks.eyes, marks.nose) if marks.nose is not None else 0.0
    return yaw, marks.pitch_deg


def frontal_score(yaw_deg: float, pitch_deg: float | None) -> float:
    """cos(yaw) * cos(pitch), clipped to [0, 1]; 1 = facing the camera."""
    score = math.cos(math.radians(yaw_deg)) * math.cos(math.radians(pitch_deg or 0.0))
    return max(0.0, min(1.0, score))


def alignment_matrix(eyes: tuple[Point, Point], bbox: Box, settings: AlignSettings) -> np.ndarray:
    """2x3 affine map from source pixels to the aligned crop: level the eyes, crop around the box."""
    side = settings.crop_margin * max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1.0)
    scale = settings.crop_size / side
    (x0, y0), (x1, y1) = eyes
    pivot = ((x0 + x1) / 2, (y0 + y1) / 2)
    matrix = cv2.getRotationMatrix2D(pivot, eye_roll_deg(eyes), scale)
    centre = np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 1.0])
    matrix[:, 2] += settings.crop_size / 2 - matrix @ centre
    return matrix


def align_face(frame: np.ndarray, eyes: tuple[Point, Point], bbox: Box, settings: AlignSettings) -> np.ndarray:
    """The crop_size x crop_size face with its eye line horizontal (RGB uint8)."""
    matrix = alignment_matrix(eyes, bbox, settings)
    size = (settings.crop_size, settings.crop_size)
    return cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def square_crop(bbox: Sequence[float], margin: float, width: int, height: int) -> tuple[int, int, int]:
    """Top-left corner and side of a square crop of ``margin`` x the box's longer side, kept inside the frame where possible."""
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    side = max(8, int(round(margin * max(bbox[2] - bbox[0], bbox[3] - bbox[1]))))
    side = min(side, width, height)
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, side


def crop_face(rgb: np.ndarray, box: tuple[float, float, float, float], margin: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` square crop centred on ``box``, side ``margin`` x its longer edge.

    Parts outside the image are filled with edge pixels (replicated border).
    """
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1.0) * margin
    scale = size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    affine = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], np.float32)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(rgb, affine, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine map to (n, 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True)
class FaceMeasure:
    """What frontal choice knows of one face in one frame."""

    yaw_deg: float
    pitch_deg: float | None
    eye_openness: float | None
    mouth_openness: float | None

    @property
    def frontal_score(self) -> float:
        return frontal_score(self.yaw_deg, self.pitch_deg)


BOX_SOURCE = "box"  # landmarks placed from the detector's box alone: no roll, no pose, no openness
_BOX_EYE_HEIGHT, _BOX_EYE_SPREAD = 0.4, 0.2  # eye line at 0.4 of the box height, eyes 0.2 of its width off centre


def box_landmarks(bbox: Box) -> FaceLandmarks:
    """Level eyes placed in the box: an upright, unrotated crop (AniVid aligns by the box alone).

    For faces no landmarker fits (a YOLO detector has no keypoints; the face
    mesh and nvxs miss some drawn faces). Only the eye line's level matters
    to `alignment_matrix`, which centres the crop on the box.
    """
    cx, width = (bbox[0] + bbox[2]) / 2, bbox[2] - bbox[0]
    y = bbox[1] + _BOX_EYE_HEIGHT * (bbox[3] - bbox[1])
    return FaceLandmarks(source=BOX_SOURCE, eyes=((cx - _BOX_EYE_SPREAD * width, y), (cx + _BOX_EYE_SPREAD * width, y)))


def measure(marks: FaceLandmarks) -> FaceMeasure:
    """Pose and expression of one face from its landmarks."""
    yaw, pitch = yaw_pitch(marks)
    return FaceMeasure(yaw, pitch, marks.eye_openness, marks.mouth_openness)


def choose_faces(measures: Sequence[FaceMeasure | None], settings: AlignSettings) -> list[int]:
    """Indices of a track's best faces (at most faces_per_track), best first; [] when none qualifies."""
    openings = [m.eye_openness for m in measures if m is not None and m.eye_openness is not None]
    widest = max(openings, default=None)

    def usable(m: FaceMeasure | None) -> bool:
        if m is None or abs(m.yaw_deg) > settings.max_yaw_deg:
            return False
        if m.pitch_deg is not None and abs(m.pitch_deg) > settings.max_pitch_deg:
            return False
        return not (widest and m.eye_openness is not None and m.eye_openness < settings.half_closed * widest)

    def rank(i: int) -> float:
        m = measures[i]
        eyes = m.eye_openness / widest if widest and m.eye_openness is not None else 1.0
        mouth = settings.mouth_weight * (m.mouth_openness or 0.0)
        return m.frontal_score * eyes - mouth

    kept = [i for i, m in enumerate(measures) if usable(m)]
    return sorted(kept, key=lambda i: (-rank(i), i))[: settings.faces_per_track]

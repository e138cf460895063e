"""Frontalization: landmarks for a detected face, then alignment and frontal choice.

Landmark sources, tried in the order the video's style names
(`FrontalizerSettings.order`), first hit wins:

- ``face_mesh``: MediaPipe face mesh with refine_landmarks=True (iris
  centres as eyes, eyelids and lips for openness, 3D points for yaw/pitch),
  run on a square crop around the detector's box;
- ``animeface``: nvxs's eye and mouth boxes (for 2D anime, whose faces the
  face mesh may not fit);
- ``detector``: the detector's own eye keypoints (MediaPipe's six points,
  animeface's eyes), so every detected face can still be aligned.

The geometry (roll, crop, yaw, scores, choice) lives in factory/video/align.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from actors.detection import Detection, detect_anime_faces
from factory.video.align import FaceLandmarks, ordered_eyes, square_crop

# Face mesh indices (MediaPipe's canonical topology; 468+ exist with refine_landmarks).
_IRIS = (468, 473)
_EYE_CORNERS = ((33, 133), (362, 263))
_EYELIDS = ((159, 145), (386, 374))
_LIPS_INNER, _LIPS_CORNERS = (13, 14), (78, 308)
_NOSE_TIP, _FOREHEAD, _CHIN = 1, 10, 152
_OUTER_CORNERS = (33, 263)
_USED = sorted({*_IRIS, *sum(_EYE_CORNERS + _EYELIDS, ()), *_LIPS_INNER, *_LIPS_CORNERS, _NOSE_TIP, _FOREHEAD, _CHIN, *_OUTER_CORNERS})


@dataclass(frozen=True)
class FrontalizerSettings:
    """Landmark sources per style and how the face mesh sees a face."""

    order: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "3d": ("face_mesh", "detector"),
            "2d": ("face_mesh", "animeface", "detector"),
        }
    )
    mesh_margin: float = 1.6  # crop side around the box handed to the face mesh, x the box side
    mesh_input: int = 256  # that crop is resized to this side
    mesh_min_score: float = 0.3
    # True: the face mesh runs on the detector's own box (and eye line), without detecting the face
    # again; right when the detector is MediaPipe's, whose face detection the mesh would repeat
    # (about half the mesh's time). False: the mesh detects the face in the crop first, which is
    # also the gate that rejects boxes MediaPipe does not see as a face. None: the video pipeline
    # picks True for the mediapipe detector, False for any other.
    mesh_from_box: bool | None = None
    mesh_box_scale: float = 1.5  # the mesh's region = this x the box's longer side (MediaPipe's own)


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(a[:2] - b[:2])))


# MediaPipe's face landmark subgraph alone (its face mesh graph without the face detection in
# front of it): the image and the face's region in, 478 landmarks out when a face is present.
_MESH_ON_REGION = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_side_packet: "WITH_ATTENTION:with_attention"
output_stream: "LANDMARKS:face_landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:face_landmarks"
}
"""


def mesh_region(det: Detection, x0: int, y0: int, side: int, scale: float):
    """The detection as the face mesh's region (a MediaPipe NormalizedRect) in a square crop.

    Centred on the box, ``scale`` x its longer side, turned by the eye line
    when the detection has both eyes (as MediaPipe derives it from its own
    face detection).
    """
    from mediapipe.framework.formats import rect_pb2

    bx0, by0, bx1, by1 = det.bbox
    size = scale * max(bx1 - bx0, by1 - by0) / side
    region = rect_pb2.NormalizedRect(
        x_center=((bx0 + bx1) / 2 - x0) / side, y_center=((by0 + by1) / 2 - y0) / side, width=size, height=size
    )
    if "left_eye" in det.landmarks and "right_eye" in det.landmarks:
        (ax, ay), (bx, by) = ordered_eyes(det.landmarks["left_eye"], det.landmarks["right_eye"])
        region.rotation = -math.atan2(-(by - ay), bx - ax)  # MediaPipe's sign: image y points down
    return region


class FaceMeshLandmarker:
    """MediaPipe face mesh (with iris) on a square crop around the detection."""

    name = "face_mesh"

    def __init__(self, settings: FrontalizerSettings) -> None:
        import mediapipe as mp

        self.settings = settings
        if settings.mesh_from_box:
            from google.protobuf import text_format
            from mediapipe.framework import calculator_pb2
            from mediapipe.python.solution_base import PacketDataType, SolutionBase

            graph = text_format.Parse(_MESH_ON_REGION, calculator_pb2.CalculatorGraphConfig())
            hints = {"image": PacketDataType.IMAGE_FRAME, "roi": PacketDataType.PROTO}
            self._mesh = SolutionBase(graph_config=graph, side_inputs={"with_attention": True}, outputs=["face_landmarks"], stream_type_hints=hints)
        else:
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=settings.mesh_min_score,
            )

    def _found(self, crop: np.ndarray, det: Detection, x0: int, y0: int, side: int):
        """The mesh's landmark list for the face, or None."""
        if not self.settings.mesh_from_box:
            found = self._mesh.process(crop).multi_face_landmarks
            return found[0] if found else None
        region = mesh_region(det, x0, y0, side, self.settings.mesh_box_scale)
        return self._mesh.process({"image": crop, "roi": region}).face_landmarks

    def __call__(self, frame: np.ndarray, det: Detection) -> FaceLandmarks | None:
        h, w = frame.shape[:2]
        x0, y0, side = square_crop(det.bbox, self.settings.mesh_margin, w, h)
        crop = cv2.resize(frame[y0 : y0 + side, x0 : x0 + side], (self.settings.mesh_input,) * 2)
        found = self._found(crop, det, x0, y0, side)
        if found is None:
            return None
        # Points in source pixels; z shares x's scale (MediaPipe's convention). Only the points used:
        # reading all 478 from the protobuf took longer than the measures.
        marks = found.landmark
        pts = {i: np.array((marks[i].x * side + x0, marks[i].y * side + y0, marks[i].z * side)) for i in _USED}
        eyes = ordered_eyes(tuple(pts[_IRIS[0]][:2]), tuple(pts[_IRIS[1]][:2]))
        openness = np.mean(
            [_dist(pts[a], pts[b]) / max(_dist(pts[c], pts[d]), 1e-6) for (a, b), (c, d) in zip(_EYELIDS, _EYE_CORNERS)]
        )
        mouth = _dist(pts[_LIPS_INNER[0]], pts[_LIPS_INNER[1]]) / max(_dist(*(pts[i] for i in _LIPS_CORNERS)), 1e-6)
        left, right = pts[_OUTER_CORNERS[0]], pts[_OUTER_CORNERS[1]]
        top, chin = pts[_FOREHEAD], pts[_CHIN]
        return FaceLandmarks(
            source=self.name,
            eyes=eyes,
            nose=tuple(pts[_NOSE_TIP][:2]),
            mouth=tuple((pts[_LIPS_INNER[0]][:2] + pts[_LIPS_INNER[1]][:2]) / 2),
            eye_openness=float(openness),
            mouth_openness=float(mouth),
            yaw_deg=math.degrees(math.atan2(right[2] - left[2], right[0] - left[0])),
            pitch_deg=math.degrees(math.atan2(chin[2] - top[2], chin[1] - top[1])),
        )


def _eye_openness(marks: dict[str, tuple[float, float]]) -> float | None:
    sizes = [marks[k] for k in ("left_eye_size", "right_eye_size") if k in marks]
    return float(np.mean([h / w for w, h in sizes if w > 0])) if sizes else None


def _from_points(source: str, marks: dict[str, tuple[float, float]]) -> FaceLandmarks | None:
    if "left_eye" not in marks or "right_eye" not in marks:
        return None
    return FaceLandmarks(
        source=source,
        eyes=ordered_eyes(marks["left_eye"], marks["right_eye"]),
        nose=marks.get("nose"),
        mouth=marks.get("mouth"),
        eye_openness=_eye_openness(marks),
    )


class AnimeFaceLandmarker:
    """nvxs eye and mouth boxes on a square crop around the detection."""

    name = "animeface"

    def __init__(self, settings: FrontalizerSettings) -> None:
        self.settings = settings

    def __call__(self, frame: np.ndarray, det: Detection) -> FaceLandmarks | None:
        h, w = frame.shape[:2]
        x0, y0, side = square_crop(det.bbox, self.settings.mesh_margin, w, h)
        faces = detect_anime_faces(frame[y0 : y0 + side, x0 : x0 + side])
        if not faces:
            return None
        face = max(faces, key=lambda f: f.likelihood)

        def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
            return (x0 + box[0] + box[2] / 2, y0 + box[1] + box[3] / 2)

        marks = {"left_eye": centre(face.left_eye), "right_eye": centre(face.right_eye), "mouth": centre(face.mouth)}
        marks["left_eye_size"] = (float(face.left_eye[2]), float(face.left_eye[3]))
        marks["right_eye_size"] = (float(face.right_eye[2]), float(face.right_eye[3]))
        return _from_points(self.name, marks)


class DetectorLandmarker:
    """The detector's own keypoints."""

    name = "detector"

    def __init__(self, settings: FrontalizerSettings) -> None:
        self.settings = settings

    def __call__(self, frame: np.ndarray, det: Detection) -> FaceLandmarks | None:
        return _from_points(self.name, det.landmarks)


Landmarker = Callable[[np.ndarray, Detection], FaceLandmarks | None]
LANDMARKERS: dict[str, Callable[[FrontalizerSettings], Landmarker]] = {
    "face_mesh": FaceMeshLandmarker,
    "animeface": AnimeFaceLandmarker,
    "detector": DetectorLandmarker,
}


class Frontalizer:
    """Callable: (frame, detection, style) -> landmarks from the first source that finds them.

    ``style`` may be a function that returns it: it is called only when the
    sources both styles share first found nothing (the video pipeline then
    classifies that one frame instead of decoding the video twice).
    """

    def __init__(self, settings: FrontalizerSettings | None = None) -> None:
        self.settings = settings or FrontalizerSettings()
        unknown = {n for names in self.settings.order.values() for n in names} - set(LANDMARKERS)
        if unknown:
            raise ValueError(f"unknown landmark sources {sorted(unknown)}; known: {sorted(LANDMARKERS)}")
        self._made: dict[str, Landmarker] = {}
        self._head = self._shared_head()  # what every style tries first: run before the style is known

    def _landmarker(self, name: str) -> Landmarker:
        if name not in self._made:  # built on first use: a 3D-only run never loads nvxs
            self._made[name] = LANDMARKERS[name](self.settings)
        return self._made[name]

    def _shared_head(self) -> tuple[str, ...]:
        """The sources every style's order starts with."""
        head: list[str] = []
        for names in zip(*self.settings.order.values()):
            if len(set(names)) > 1:
                break
            head.append(names[0])
        return tuple(head)

    def _first(self, frame: np.ndarray, det: Detection, names: tuple[str, ...]) -> FaceLandmarks | None:
        for name in names:
            marks = self._landmarker(name)(frame, det)
            if marks is not None:
                return marks
        return None

    def __call__(self, frame: np.ndarray, det: Detection, style: str | Callable[[], str]) -> FaceLandmarks | None:
        head = self._head if callable(style) else ()
        marks = self._first(frame, det, head)
        if marks is not None:
            return marks
        order = self.settings.order.get(style() if callable(style) else style, ("face_mesh", "detector"))
        return self._first(frame, det, tuple(n for n in order if n not in head))

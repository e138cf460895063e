"""Face detectors behind one interface, chosen by the `--detector` spec.

A detector is a small callable: a batch of RGB uint8 frames -> one list of
`Detection` per frame (bbox in source pixels, score, named landmarks). The
registry `DETECTORS` maps the spec's name to a factory; `make_detector`
parses ``name`` or ``name:argument`` (``yolo:weights.pt``).

- ``mediapipe``: MediaPipe face detection, model_selection=0 (short range, as
  method A), the model bundled in mediapipe 0.10.21. Its threshold is the
  *keep* score of the tracker's hysteresis (default 0.5), not the paper's 0.8,
  so tracks can live through frames that score lower (tracks.py starts them
  at 0.8).
- ``animeface``: nagadomi's nvxs anime face detector (the `animeface`
  package; needs Pillow < 12, see :func:`detect_anime_faces`).
  Gives both eyes and the mouth.
- ``yolo:PATH`` or ``yolo:NAME[@VERSION]``: ultralytics YOLO from a local
  weights file or from the model store (FACTORY_MODEL_STORE), on the GPU when
  one is visible; ``yolo:A+B`` (or a stored model listing several weights)
  is an ensemble whose members vote on each box (:func:`vote_merge`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from factory.boxes import greedy_pairs
from factory.video.tracks import TrackSettings

Point = tuple[float, float]


class DetectorError(ValueError):
    """A detector spec that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Detection:
    """One face in one frame."""

    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels
    score: float
    landmarks: dict[str, Point] = field(default_factory=dict)  # e.g. left_eye / right_eye (the character's)

    @property
    def area(self) -> float:
        return max(0.0, self.bbox[2] - self.bbox[0]) * max(0.0, self.bbox[3] - self.bbox[1])

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (rounded to 0.1 px / 1e-4)."""
        return {
            "bbox": [round(v, 1) for v in self.bbox],
            "score": round(self.score, 4),
            "landmarks": {k: [round(x, 1), round(y, 1)] for k, (x, y) in self.landmarks.items()},
        }


class Detector(Protocol):
    """Batch of RGB uint8 frames -> detections per frame."""

    name: str
    version: str

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]: ...


@dataclass(frozen=True)
class DetectorSettings:
    """Settings shared by the detectors."""

    min_score: float = 0.5  # lowest score returned; the tracker's keep score (hysteresis)
    model_selection: int = 0  # MediaPipe: 0 short range (method A), 1 full range
    device: str | None = None  # YOLO: None picks cuda:0 when visible, else cpu
    batch_size: int = 16  # YOLO frames per forward pass
    flip_vote: bool = False  # YOLO: score each frame and its mirror image, keep faces both see (vote_merge)


def _clip_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> tuple[float, ...]:
    return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))


# MediaPipe's six keypoints, in its order; left/right are the subject's.
_MP_KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


class MediaPipeDetector:
    """MediaPipe face detection (BlazeFace short range by default)."""

    name = "mediapipe"

    def __init__(self, settings: DetectorSettings) -> None:
        import mediapipe as mp

        self.settings = settings
        self.version = f"{metadata.version('mediapipe')}/face_detection/model_selection={settings.model_selection}"
        self._model = mp.solutions.face_detection.FaceDetection(
            model_selection=settings.model_selection, min_detection_confidence=settings.min_score
        )

    def _one(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        found = self._model.process(np.ascontiguousarray(frame)).detections or []
        out = []
        for det in found:
            box = det.location_data.relative_bounding_box
            points = det.location_data.relative_keypoints
            bbox = _clip_box(box.xmin * w, box.ymin * h, (box.xmin + box.width) * w, (box.ymin + box.height) * h, w, h)
            marks = {name: (p.x * w, p.y * h) for name, p in zip(_MP_KEYPOINTS, points)}
            out.append(Detection(bbox=bbox, score=float(det.score[0]), landmarks=marks))
        return out

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._one(frame) for frame in frames]


def _centre(box: tuple[int, int, int, int]) -> Point:
    x, y, w, h = box
    return (x + w / 2.0, y + h / 2.0)


Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class AnimeFace:
    """One face found by nvxs: likelihood and the boxes of face, eyes and mouth."""

    likelihood: float
    face: Box
    left_eye: Box
    right_eye: Box
    mouth: Box


def detect_anime_faces(frame: np.ndarray) -> list[AnimeFace]:
    """Run the `animeface` package on one RGB frame.

    Its C extension reads Pillow's internal image layout; from Pillow 12 on
    it finds nothing, silently (measured: 0 of 24 frames of a 2D test video
    with 12.0 and 13.0, 14 of 24 with 11.3). Hence the pin and this check.
    """
    import animeface
    import PIL
    from PIL import Image

    if int(PIL.__version__.split(".")[0]) >= 12:
        raise DetectorError(f"the animeface detector needs Pillow < 12 (found {PIL.__version__}): pip install 'pillow<12'")

    def box(part) -> Box:
        pos = part.pos
        return (int(pos.x), int(pos.y), int(pos.width), int(pos.height))

    return [
        AnimeFace(float(f.likelihood), box(f.face), box(f.left_eye), box(f.right_eye), box(f.mouth))
        for f in animeface.detect(Image.fromarray(np.ascontiguousarray(frame)))
    ]


class AnimeFaceDetector:
    """nagadomi's nvxs anime face detector (the `animeface` package), with eyes and mouth."""

    name = "animeface"

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.version = f"animeface-{metadata.version('animeface')}"

    def _one(self, frame: np.ndarray) -> list[Detection]:
        out = []
        for face in detect_anime_faces(frame):
            if face.likelihood < self.settings.min_score:
                continue
            x, y, w, h = face.face
            marks = {"left_eye": _centre(face.left_eye), "right_eye": _centre(face.right_eye)}
            marks["mouth"] = _centre(face.mouth)
            # Eye box sizes feed the eye-openness fallback in frontalization.
            marks["left_eye_size"] = (float(face.left_eye[2]), float(face.left_eye[3]))
            marks["right_eye_size"] = (float(face.right_eye[2]), float(face.right_eye[3]))
            fh, fw = frame.shape[:2]
            out.append(Detection(bbox=_clip_box(x, y, x + w, y + h, fw, fh), score=face.likelihood, landmarks=marks))
        return out

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._one(frame) for frame in frames]


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=6)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stored_weights(stored: Any) -> list[Path]:
    """The weights files of a stored detector: its manifest's ``weights``, one name or a list (an ensemble)."""
    names = stored.manifest.get("weights", "best.pt")
    return [stored.file(name) for name in ([names] if isinstance(names, str) else names)]


def stored_spec(stored: Any) -> str:
    """The ``--detector`` spec of a stored (or shipped) YOLO detector, by its files: ``yolo:A`` or ``yolo:A+B``."""
    return "yolo:" + "+".join(str(path) for path in stored_weights(stored))


def _one_weights(spec: str) -> tuple[list[Path], str]:
    path = Path(spec).expanduser()
    if path.is_file():
        return [path], f"{path.stem}-{_file_digest(path)}"
    from factory.models import ModelStore, ModelStoreError

    try:
        stored = ModelStore().fetch(spec)
    except ModelStoreError as exc:
        raise DetectorError(f"yolo:{spec}: not a weights file, and {exc}") from None
    return stored_weights(stored), str(stored.ref)


def yolo_weights(spec: str) -> tuple[list[Path], str]:
    """The weights files of ``spec`` and a version label for the sample metadata.

    ``spec`` is a local weights file or model-store ``NAME[@VERSION]``; several
    joined by ``+`` (``a.pt+b.pt``) make an ensemble, as does a stored model
    whose manifest lists several weights.
    """
    parts = [spec] if Path(spec).expanduser().is_file() else spec.split("+")
    found = [_one_weights(part) for part in parts]
    return [path for paths, _ in found for path in paths], "+".join(label for _, label in found)


def mirror_box(box: tuple[float, ...], width: int) -> tuple[float, ...]:
    """The box of a horizontally mirrored image of ``width`` pixels, in the original's frame."""
    x0, y0, x1, y1 = box
    return (width - x1, y0, width - x0, y1)


def _mean_box(group: Sequence[Detection]) -> tuple[float, ...]:
    return tuple(sum(d.bbox[k] for d in group) / len(group) for k in range(4))


def vote_merge(views: Sequence[Sequence[Detection]], min_score: float, pair_iou: float = 0.5) -> list[Detection]:
    """Fuse the detections that N views of one frame made (all boxes in the frame's coordinates).

    Views are a frame and its mirror image, several models, or both. Each
    view's boxes join the groups so far one to one, best IoU first, at
    ``pair_iou`` or more against a group's mean box; the rest start groups.
    A group scores the sum of its members' scores over N (a view that saw
    nothing there adds 0) and keeps their mean box; kept at ``min_score``.
    So with two views and min_score >= 0.5 only a face both see can pass.
    """
    groups: list[list[Detection]] = []
    for view in views:
        pairs = greedy_pairs([_mean_box(g) for g in groups], [d.bbox for d in view], pair_iou)
        for i, j in pairs:
            groups[i].append(view[j])
        paired = {j for _, j in pairs}
        groups += [[d] for j, d in enumerate(view) if j not in paired]
    fused = [Detection(bbox=_mean_box(g), score=sum(d.score for d in g) / len(views)) for g in groups]
    return sorted((d for d in fused if d.score >= min_score), key=lambda d: -d.score)


class YoloDetector:
    """ultralytics YOLO face detector (one model or a voting ensemble) from weights files or the model store."""

    name = "yolo"

    def __init__(self, settings: DetectorSettings, weights: str) -> None:
        paths, label = yolo_weights(weights)
        import torch
        from actors.offline import import_ultralytics

        YOLO = import_ultralytics().YOLO

        self.settings = settings
        self.device = settings.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
        self.version = f"{label}/ultralytics-{metadata.version('ultralytics')}"
        self._models = [YOLO(str(path)) for path in paths]

    @property
    def views(self) -> int:
        """How many views vote on each frame: models x (1, or 2 with the flip vote)."""
        return len(self._models) * (2 if self.settings.flip_vote else 1)

    def _predict(self, model: Any, bgr: list[np.ndarray], conf: float) -> list[list[Detection]]:
        results = model.predict(bgr, conf=conf, device=self.device, verbose=False)
        out = []
        for result in results:
            boxes = result.boxes
            xyxy = boxes.xyxy.cpu().numpy() if len(boxes) else np.zeros((0, 4))
            scores = boxes.conf.cpu().numpy() if len(boxes) else np.zeros(0)
            out.append([Detection(bbox=tuple(float(v) for v in b), score=float(s)) for b, s in zip(xyxy, scores)])
        return out

    def _views(self, model: Any, bgr: list[np.ndarray], conf: float) -> list[list[list[Detection]]]:
        """Per frame of ``bgr``, this model's view(s): plain, and mirrored back when voting with the flip."""
        if not self.settings.flip_vote:
            return [[found] for found in self._predict(model, bgr, conf)]
        found = self._predict(model, bgr + [np.ascontiguousarray(f[:, ::-1]) for f in bgr], conf)
        n = len(bgr)
        return [
            [found[i], [Detection(bbox=mirror_box(d.bbox, bgr[i].shape[1]), score=d.score) for d in found[n + i]]]
            for i in range(n)
        ]

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        out: list[list[Detection]] = []
        min_score, n_views = self.settings.min_score, self.views
        # A fused score >= min_score needs each view >= N * min_score - (N - 1) (the others at most 1).
        conf = max(0.01, n_views * min_score - (n_views - 1))
        step = self.settings.batch_size
        for start in range(0, len(frames), step):
            # ultralytics reads numpy images as BGR.
            chunk = [np.ascontiguousarray(f[..., ::-1]) for f in frames[start : start + step]]
            per_model = [self._views(model, chunk, conf) for model in self._models]
            for i in range(len(chunk)):
                views = [view for model_views in per_model for view in model_views[i]]
                out.append(views[0] if n_views == 1 else vote_merge(views, min_score))
        return out


DetectorFactory = Callable[[DetectorSettings, str], Detector]
DETECTORS: dict[str, DetectorFactory] = {
    "mediapipe": lambda settings, _arg: MediaPipeDetector(settings),
    "animeface": lambda settings, _arg: AnimeFaceDetector(settings),
    "yolo": YoloDetector,
}


def parse_detector_spec(spec: str) -> tuple[str, str]:
    """``name`` or ``name:argument`` -> (name, argument); raises DetectorError for an unknown name."""
    name, _, arg = spec.partition(":")
    if name not in DETECTORS:
        raise DetectorError(f"unknown detector {spec!r}; known: mediapipe, animeface, yolo:WEIGHTS")
    if name == "yolo" and not arg:
        raise DetectorError("yolo needs weights: --detector yolo:PATH")
    return name, arg


METHOD_A_START_SCORE = TrackSettings.start_score  # method A: a MediaPipe face counts at >= 0.8
YOLO_START_SCORE = 0.6  # AniVid's YOLO confidence, for weights that record none


def _stored_confidence(manifest_dir: Path) -> float | None:
    """The ``confidence`` a `factory train detector` run recorded in its model.json, if any."""
    from factory.models import MANIFEST

    manifest = manifest_dir / MANIFEST
    if not manifest.is_file():
        return None
    value = json.loads(manifest.read_text()).get("config", {}).get("confidence")
    return None if value is None else float(value)


def start_score(spec: str) -> float:
    """The score at which the detector of ``spec`` calls a face a face: where a track may start.

    Scores are not comparable across detectors: method A's 0.8 is MediaPipe's
    (and stays the default for animeface, which the paper does not cover); a
    YOLO model trained by the factory records the confidence it was scored at
    (model.json ``config.confidence``), else AniVid's 0.6.
    """
    name, arg = parse_detector_spec(spec)
    if name != "yolo":
        return METHOD_A_START_SCORE
    paths, _ = yolo_weights(arg)
    stored = _stored_confidence(paths[0].parent)
    return YOLO_START_SCORE if stored is None else stored


def make_detector(spec: str, settings: DetectorSettings | None = None) -> Detector:
    """Build the detector named by a ``--detector`` spec."""
    name, arg = parse_detector_spec(spec)
    return DETECTORS[name](settings or DetectorSettings(), arg)

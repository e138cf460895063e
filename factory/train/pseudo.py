"""Video pseudo-labels for the detector: faces a trusted detector is sure of in sampled video frames.

`factory frames` writes sampled frames of real videos (``video_frame``
samples). A detector from the registry (MediaPipe by default) runs on each
stored frame; a frame becomes a training image only when it holds exactly
one face and that face scores at least ``min_score`` (method A's 0.8): a
frame with two faces, or one face the detector is unsure of, would teach a
box that may be wrong or a missing box. Pseudo-labelled frames join the
train split only; evaluation stays on held-out renders, whose boxes are exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from factory.shards import iter_samples
from factory.storage import open_location
from factory.train.data import FaceSample, TrainingDataError


@dataclass(frozen=True)
class PseudoLabelSettings:
    """Which detector labels the frames, and how sure it must be."""

    detector: str = "mediapipe"  # a --detector spec (mediapipe | animeface | yolo:...)
    min_score: float = 0.8  # method A's face threshold
    floor: float = 0.5  # faces above this count when deciding "exactly one face"

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.min_score <= 1:
            raise ValueError("need 0 < floor <= min_score <= 1")


def pseudo_labelled_frames(frames_url: str, settings: PseudoLabelSettings = PseudoLabelSettings()) -> tuple[list[FaceSample], dict[str, Any]]:
    """Train-split samples from the frames a detector labels with certainty, and counts for metrics."""
    from actors.detection import DetectorSettings, make_detector

    detector = make_detector(settings.detector, DetectorSettings(min_score=settings.floor))
    samples, seen = [], 0
    for raw in iter_samples(open_location(frames_url)):
        meta = json.loads(raw["json"]) if "json" in raw else {}
        if meta.get("kind") != "video_frame" or "jpg" not in raw:
            continue
        seen += 1
        bgr = cv2.imdecode(np.frombuffer(raw["jpg"], np.uint8), cv2.IMREAD_COLOR)
        faces = detector([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0]
        if len(faces) != 1 or faces[0].score < settings.min_score:
            continue
        box = tuple(float(v) for v in faces[0].bbox)
        label = {"detector": f"{detector.name} {detector.version}", "score": round(float(faces[0].score), 4)}
        samples.append(FaceSample(raw["__key__"], str(meta.get("video_id")), "train", raw["jpg"], box, {**meta, "pseudo_label": label}))
    if seen == 0:
        raise TrainingDataError(f"no committed video_frame samples in {frames_url} (make them with `factory frames`)")
    counts = {"pseudo_frames_seen": seen, "pseudo_frames_used": len(samples), "pseudo_detector": f"{detector.name} {detector.version}"}
    return samples, counts

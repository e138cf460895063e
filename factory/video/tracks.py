"""Face tracks: link per-frame detections within a shot, with score hysteresis.

Method A keeps MediaPipe detections scoring >= 0.8, takes the largest face
when several appear, and drops face segments shorter than 2 s. Measured on
3D anime faces, MediaPipe's score hovers 0.5-0.85 from frame to frame, so a
strict per-frame 0.8 cut shatters segments. Here a track *starts* at a
detection scoring >= `start_score` (the paper's 0.8) and *extends*, before
and after it, through detections scoring >= `keep_score` (0.5), linked by
box overlap or centre continuity. A track never crosses a shot cut. AniVid mode (method C) keeps
only frames with exactly one face and drops tracks whose face barely moves
(motion score below the paper's 0.35).

Pure functions over small records; no model, no Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from factory.boxes import iou
from factory.video.shots import split_shots

Box = tuple[float, float, float, float]


class Face(Protocol):
    """What the tracker needs of a detection."""

    bbox: Box
    score: float


@dataclass(frozen=True)
class TrackSettings:
    """Settings of the tracker; defaults are the papers' where they give a number."""

    start_score: float = 0.8  # method A: a face counts at >= 0.8; a track starts there
    keep_score: float = 0.5  # hysteresis: a started track continues down to this score
    min_duration_s: float = 2.0  # method A: drop face segments shorter than 2 s
    min_iou: float = 0.3  # link when boxes overlap this much ...
    max_centre_shift: float = 0.5  # ... or the centre moved less than this many face widths
    max_missed: int = 1  # samples in a row a track may miss a face before it ends
    single_face_only: bool = False  # AniVid: frames with several faces end a track
    min_motion: float = 0.0  # AniVid sets 0.35: drop tracks whose motion score is lower

    def __post_init__(self) -> None:
        if not 0 <= self.keep_score <= self.start_score <= 1:
            raise ValueError("need 0 <= keep_score <= start_score <= 1")
        if self.min_duration_s < 0 or self.max_missed < 0 or self.min_motion < 0:
            raise ValueError("min_duration_s, max_missed and min_motion must be >= 0")


ANIVID_MOTION = 0.35  # method C: DVR-Scan threshold, here on the face crop's mean abs difference


@dataclass(frozen=True)
class Track:
    """One face followed through sampled frames of one shot."""

    track_id: int
    shot: int
    samples: tuple[int, ...]  # positions in the sampled-frame sequence
    detections: tuple[int, ...]  # index of the chosen detection in each of those frames
    times: tuple[float, ...]
    start_s: float
    end_s: float  # when the face was last seen plus the gap to the next sample (or the shot end)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def linked(a: Box, b: Box, settings: TrackSettings) -> bool:
    """Whether box b continues box a: enough overlap, or a centre shift under the limit."""
    if iou(a, b) >= settings.min_iou:
        return True
    width = max(a[2] - a[0], b[2] - b[0], 1e-6)
    shift = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return shift <= settings.max_centre_shift * width


def pick_face(faces: Sequence[Face], settings: TrackSettings) -> int | None:
    """Index of the frame's face to follow (the largest kept one), or None.

    In single-face mode a frame with more than one kept face gives None.
    """
    kept = [i for i, f in enumerate(faces) if f.score >= settings.keep_score]
    if not kept or (settings.single_face_only and len(kept) > 1):
        return None
    return max(kept, key=lambda i: _area(faces[i].bbox))


@dataclass
class _Run:
    samples: list[int]
    detections: list[int]
    last_box: Box
    started: bool  # holds a face scoring >= start_score
    missed: int = 0


def _runs_in_shot(
    positions: range, frames: Sequence[Sequence[Face]], settings: TrackSettings
) -> list[tuple[list[int], list[int]]]:
    """Runs of linked faces scoring >= keep_score that hold at least one face >= start_score.

    Double-threshold hysteresis in both directions: the low-scoring frames
    just before a face first reaches start_score belong to its track too.
    """
    done: list[tuple[list[int], list[int]]] = []
    run: _Run | None = None
    for pos in positions:
        choice = pick_face(frames[pos], settings)
        face = frames[pos][choice] if choice is not None else None
        if run is not None and face is not None and linked(run.last_box, face.bbox, settings):
            run.samples.append(pos)
            run.detections.append(choice)
            run.last_box, run.missed = face.bbox, 0
            run.started = run.started or face.score >= settings.start_score
            continue
        if run is not None and face is None and run.missed < settings.max_missed:
            run.missed += 1
            continue
        if run is not None and run.started:
            done.append((run.samples, run.detections))
        run = None if face is None else _Run([pos], [choice], face.bbox, face.score >= settings.start_score)
    if run is not None and run.started:
        done.append((run.samples, run.detections))
    return done


def build_tracks(
    times: Sequence[float],
    frames: Sequence[Sequence[Face]],
    cut_times: Sequence[float],
    duration_s: float,
    settings: TrackSettings | None = None,
) -> list[Track]:
    """Tracks over sampled frames (`times` ascending, `frames[i]` the faces at `times[i]`).

    A track ends at a cut; its end time is the next sample's time in the same
    shot, else the shot's end (the cut or `duration_s`). Tracks shorter than
    `min_duration_s` are dropped; ids count the kept tracks in time order.
    """
    settings = settings or TrackSettings()
    shot_ends = [*sorted(cut_times), duration_s]
    tracks: list[Track] = []
    for shot, positions in enumerate(split_shots(times, cut_times)):
        shot_end = next((c for c in shot_ends if c > times[positions[-1]]), duration_s)
        for samples, detections in _runs_in_shot(positions, frames, settings):
            after = samples[-1] + 1
            end = times[after] if after < positions.stop else shot_end
            track = Track(
                track_id=len(tracks),
                shot=shot,
                samples=tuple(samples),
                detections=tuple(detections),
                times=tuple(float(times[p]) for p in samples),
                start_s=float(times[samples[0]]),
                end_s=float(end),
            )
            if track.duration_s >= settings.min_duration_s:
                tracks.append(track)
    return tracks


def motion_score(crops: Sequence[np.ndarray]) -> float:
    """Mean absolute difference (0-255 grey levels) between consecutive face crops of one size.

    0 for a frozen face; a talking, moving face scores several grey levels.
    """
    if len(crops) < 2:
        return 0.0
    diffs = [np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))) for a, b in zip(crops, crops[1:])]
    return float(np.mean(diffs))

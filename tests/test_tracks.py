"""Face tracks: hysteresis, largest face, cuts, minimum length, AniVid's single-face and motion rules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from factory.video.tracks import TrackSettings, build_tracks, iou, motion_score, pick_face


@dataclass(frozen=True)
class Face:
    bbox: tuple[float, float, float, float]
    score: float


def face(score: float, x: float = 100.0, size: float = 50.0) -> Face:
    return Face((x, 100.0, x + size, 100.0 + size), score)


def times(n: int) -> list[float]:
    return [0.5 * i for i in range(n)]


def test_hysteresis_needs_start_score_once_and_keeps_down_to_keep_score():
    scores = [0.6, 0.85, 0.6, 0.55, 0.52, 0.7, 0.9, 0.6]
    frames = [[face(s)] for s in scores]
    [track] = build_tracks(times(8), frames, [], 4.0)
    # The 0.6 before the first 0.8+ belongs to the track: hysteresis works both ways.
    assert track.samples == tuple(range(8))
    assert (track.start_s, track.end_s) == (0.0, 4.0)
    strict = TrackSettings(keep_score=0.8)
    assert build_tracks(times(8), frames, [], 4.0, strict) == []  # a per-frame 0.8 cut shatters it


def test_a_track_never_starts_below_start_score():
    frames = [[face(0.75)] for _ in range(10)]
    assert build_tracks(times(10), frames, [], 5.0) == []


def test_tracks_never_cross_a_cut_and_end_at_it():
    frames = [[face(0.9)] for _ in range(12)]
    tracks = build_tracks(times(12), frames, [3.2], 6.0)
    assert [(t.start_s, t.end_s, t.shot) for t in tracks] == [(0.0, 3.2, 0), (3.5, 6.0, 1)]
    assert all(max(t.times) < 3.2 or min(t.times) >= 3.2 for t in tracks)


def test_short_segments_are_dropped():
    frames = [[face(0.9)]] * 3 + [[]] * 3 + [[face(0.9)]] * 6
    tracks = build_tracks(times(12), frames, [], 6.0)
    assert [(t.start_s, t.end_s) for t in tracks] == [(3.0, 6.0)]  # the first lasts 1.5 s < 2 s
    assert tracks[0].track_id == 0


def test_one_missed_sample_is_bridged_two_end_the_track():
    one_gap = [[face(0.9)]] * 5 + [[]] + [[face(0.9)]] * 5
    assert len(build_tracks(times(11), one_gap, [], 5.5)) == 1
    two_gaps = [[face(0.9)]] * 5 + [[], []] + [[face(0.9)]] * 5
    assert len(build_tracks(times(12), two_gaps, [], 6.0)) == 2


def test_the_largest_face_is_followed_and_a_jump_starts_a_new_track():
    small, large = face(0.95, x=10, size=20), face(0.85, x=200, size=60)
    assert pick_face([small, large], TrackSettings()) == 1
    frames = [[face(0.9, x=100)]] * 6 + [[face(0.9, x=400)]] * 6  # same shot, the face jumps
    tracks = build_tracks(times(12), frames, [], 6.0)
    assert [t.start_s for t in tracks] == [0.0, 3.0]


def test_single_face_mode_drops_frames_with_several_faces():
    both = [face(0.9, x=10), face(0.9, x=300)]
    settings = TrackSettings(single_face_only=True)
    assert pick_face(both, settings) is None
    frames = [[face(0.9)]] * 3 + [both] * 3 + [[face(0.9)]] * 3
    assert build_tracks(times(9), frames, [], 4.5, settings) == []


def test_iou_and_motion_score():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    still = [np.full((8, 8), 100, np.uint8)] * 4
    assert motion_score(still) == 0.0
    moving = [np.full((8, 8), v, np.uint8) for v in (100, 110, 100)]
    assert motion_score(moving) == pytest.approx(10.0)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        TrackSettings(start_score=0.5, keep_score=0.8)

"""Shot cuts: found within one sample of the truth, agreeing with PySceneDetect."""

from __future__ import annotations

import numpy as np
import pytest
from scenedetect import ContentDetector, detect

from factory.video.decode import SamplingSettings, Video
from factory.video.shots import ShotSettings, detect_cuts, split_shots


def _timed_frames(path, sampling: SamplingSettings) -> list[tuple[float, np.ndarray]]:
    with Video(path) as video:
        return [(t, frame) for batch in video.frame_batches(sampling) for _, t, _, frame in batch]


@pytest.mark.parametrize("name", ["talking_2d", "talking_3d"])
def test_cut_found_within_one_sample(name, request):
    video = request.getfixturevalue(name)
    cuts = detect_cuts(_timed_frames(video.path, SamplingSettings()))
    assert len(cuts) == len(video.cut_times) == 1
    # Reported at the first sample of the new shot: at or after the cut, less than a sample later.
    assert 0 <= cuts[0] - video.cut_times[0] < 0.5


@pytest.mark.parametrize("name", ["talking_2d", "talking_3d"])
def test_every_frame_sampling_finds_the_cut_frame_like_pyscenedetect(name, request):
    video = request.getfixturevalue(name)
    every_frame = SamplingSettings(interval_s=1 / video.spec.fps, batch_size=48)
    cuts = detect_cuts(_timed_frames(video.path, every_frame))
    assert cuts == pytest.approx(video.cut_times, abs=1e-3)
    scenes = detect(str(video.path), ContentDetector())
    theirs = [start.frame_num / video.spec.fps for start, _ in scenes[1:]]
    assert theirs == pytest.approx(cuts, abs=1e-3)


def test_one_shot_video_has_no_cut(silent_video):
    assert detect_cuts(_timed_frames(silent_video.path, SamplingSettings())) == []


def test_a_cut_starts_a_new_shot_in_the_sampled_frames(talking_2d):
    timed = _timed_frames(talking_2d.path, SamplingSettings())
    times = [t for t, _ in timed]
    shots = split_shots(times, detect_cuts(timed))
    assert [len(shot) for shot in shots] == [13, 11]
    cut = talking_2d.cut_times[0]
    assert all(times[i] < cut for i in shots[0]) and all(times[i] >= cut for i in shots[1])


def test_split_shots_edges():
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    assert split_shots(times, []) == [range(0, 5)]
    assert split_shots(times, [1.0]) == [range(0, 2), range(2, 5)]
    assert split_shots(times, [2.0, 0.5]) == [range(0, 1), range(1, 4), range(4, 5)]
    assert split_shots(times, [0.0, 9.0]) == [range(0, 5)]  # cuts outside the frames change nothing
    assert split_shots([], [1.0]) == []


def test_threshold_is_a_setting(talking_2d):
    timed = _timed_frames(talking_2d.path, SamplingSettings())
    assert len(detect_cuts(timed, ShotSettings(threshold=0.01))) > 1
    with pytest.raises(ValueError):
        ShotSettings(threshold=0.0)

"""Synthetic test videos: the truth they return matches the pictures and sound they hold."""

from __future__ import annotations

import numpy as np
import pytest

from factory.synthetic.video import (
    BACKGROUNDS,
    CHARACTERS,
    STYLES,
    Pose,
    SpeechLine,
    VideoSpec,
    draw_face,
    make_video,
)
from factory.video.decode import SamplingSettings, Video
from tests.fixtures_video import CUT_S


def _decoded(video) -> tuple[list[int], np.ndarray]:
    with Video(video.path) as decoded:
        rows = [(i, frame) for batch in decoded.frame_batches(SamplingSettings()) for i, _, _, frame in batch]
    return [i for i, _ in rows], np.stack([frame for _, frame in rows])


@pytest.mark.parametrize("name", ["talking_2d", "talking_3d"])
def test_eye_truth_lies_on_the_drawn_pupils(name, request):
    video = request.getfixturevalue(name)
    indices, frames = _decoded(video)
    checked = 0
    for face in video.faces:
        for row, index in enumerate(indices):
            for x, y in face.eyes[index]:
                if np.isnan(x):
                    continue
                grey = frames[row, round(y), round(x)].mean()
                assert grey < 110, f"face {face.face_id} frame {index}: eye pixel is {grey:.0f}, not a pupil"
                checked += 1
    assert checked >= 2 * len(indices)


def test_faces_and_cut_follow_the_spec(talking_2d):
    faces = {face.face_id: face for face in talking_2d.faces}
    assert set(faces) == {"a", "b", "c"}
    cut = talking_2d.cut_times[0]
    assert cut == pytest.approx(CUT_S, abs=1 / talking_2d.spec.fps)
    assert (faces["a"].start_s, faces["a"].end_s) == pytest.approx((0.0, cut))
    assert (faces["c"].start_s, faces["c"].end_s) == pytest.approx((0.0, cut))
    assert (faces["b"].start_s, faces["b"].end_s) == pytest.approx((cut, talking_2d.spec.duration_s))
    assert talking_2d.speakers == ("a", "b")  # the main face of the shot each line starts in
    # The faces move and tilt: the eye line is not always horizontal.
    assert np.nanmax(np.abs(faces["a"].rolls_deg)) > 3.0
    assert np.nanstd(faces["a"].eyes[:, 0, 0]) > 1.0


def test_eye_line_angle_is_the_head_roll(talking_3d):
    face = talking_3d.faces[0]
    present = ~np.isnan(face.rolls_deg)
    left, right = face.eyes[present, 0], face.eyes[present, 1]
    angles = np.degrees(np.arctan2(right[:, 1] - left[:, 1], right[:, 0] - left[:, 0]))
    assert np.allclose(angles, face.rolls_deg[present], atol=1e-6)


def test_sound_is_loud_where_the_truth_says_speech(talking_3d):
    with Video(talking_3d.path) as decoded:
        audio = decoded.audio()
    times = np.arange(len(audio)) / 16_000
    speech = np.zeros(len(audio), dtype=bool)
    for start, end in talking_3d.speech_intervals:
        speech |= (times >= start) & (times < end)
    rms_in = np.sqrt(np.mean(audio[speech] ** 2))
    rms_out = np.sqrt(np.mean(audio[~speech] ** 2))
    assert rms_in > 2 * rms_out > 0  # speech over quiet, but present, music


def test_mouth_opens_with_speech():
    def mouth_pixels(openness: float) -> int:
        img = STYLES["2d"].background(320, 240, *BACKGROUNDS[0])
        draw_face(img, Pose(160, 120, 60, 75, 0.0, openness), CHARACTERS["a"], STYLES["2d"])
        mouth = np.array([150, 40, 50])
        return int(np.count_nonzero(np.abs(img.astype(int) - mouth).max(axis=2) < 20))

    assert mouth_pixels(1.0) > 3 * mouth_pixels(0.0)


def test_same_seed_same_truth_other_seed_other_motion(tmp_path):
    spec = VideoSpec(duration_s=1.0, cut_s=None, speech=(), with_audio=False, seed=5)
    first = make_video(tmp_path / "a.mp4", spec)
    again = make_video(tmp_path / "b.mp4", spec)
    other = make_video(tmp_path / "c.mp4", VideoSpec(duration_s=1.0, cut_s=None, speech=(), with_audio=False, seed=6))
    assert np.array_equal(first.faces[0].eyes, again.faces[0].eyes)
    assert not np.allclose(first.faces[0].eyes, other.faces[0].eyes)


@pytest.mark.parametrize(
    "bad",
    [
        {"style": "watercolour"},
        {"cut_s": 20.0},
    ],
)
def test_spec_rejects_what_cannot_be_drawn(bad):
    with pytest.raises(ValueError):
        VideoSpec(**bad)


def test_speech_must_fit(tmp_path):
    spec = VideoSpec(duration_s=2.0, cut_s=None, speech=(SpeechLine(1.5, "This sentence is far too long to fit."),))
    with pytest.raises(ValueError, match="overlaps"):
        make_video(tmp_path / "x.mp4", spec)


def test_corrupt_files_keep_their_size_and_header(bad_files, silent_video):
    source = silent_video.path.read_bytes()
    for kind in ("corrupt_header", "corrupt_payload"):
        data = bad_files[kind].read_bytes()
        assert len(data) == len(source) and data[4:8] == b"ftyp" and data != source
    assert bad_files["zero_byte"].stat().st_size == 0

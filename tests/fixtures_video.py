"""Synthetic test videos shared by the video tests (a pytest plugin of conftest.py).

Session-scoped: each video is made once per test session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from factory.synthetic.video import (
    SyntheticVideo,
    VideoSpec,
    make_one_frame_video,
    make_video,
    write_corrupt_file,
    write_zero_byte_file,
)

CUT_S = 6.3  # between sampled times, so "within one sample" is a real tolerance


def _folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "synthetic-videos"
    folder.mkdir(exist_ok=True)
    return folder


def _video(tmp_path_factory: pytest.TempPathFactory, name: str, spec: VideoSpec) -> SyntheticVideo:
    return make_video(_folder(tmp_path_factory) / f"{name}.mp4", spec)


@pytest.fixture(scope="session")
def talking_2d(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """2D style, two faces then a cut to a third, two utterances over music."""
    return _video(tmp_path_factory, "talking_2d", VideoSpec(style="2d", cut_s=CUT_S, second_face=True, seed=0))


@pytest.fixture(scope="session")
def talking_3d(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """3D style, one face then a cut to another, two utterances over music."""
    return _video(tmp_path_factory, "talking_3d", VideoSpec(style="3d", cut_s=CUT_S, seed=1))


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """2D style, one shot, no audio stream."""
    spec = VideoSpec(style="2d", duration_s=4.0, cut_s=None, speech=(), with_audio=False, seed=2)
    return _video(tmp_path_factory, "silent", spec)


@pytest.fixture(scope="session")
def one_frame_video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """A single frame, no audio."""
    return make_one_frame_video(_folder(tmp_path_factory) / "one_frame.mp4")


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory, silent_video: SyntheticVideo) -> dict[str, Path]:
    """Inputs no decoder can read, by kind."""
    folder = _folder(tmp_path_factory)
    rng = np.random.default_rng(7)
    return {
        "zero_byte": write_zero_byte_file(folder / "zero.mp4"),
        "corrupt_header": write_corrupt_file(folder / "corrupt_header.mp4", silent_video.path, "header", rng),
        "corrupt_payload": write_corrupt_file(folder / "corrupt_payload.mp4", silent_video.path, "payload", rng),
        "missing": folder / "missing.mp4",
    }


@pytest.fixture(scope="session")
def frame_4k_video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """A single 3840x2160 frame with a face, no audio."""
    spec = VideoSpec(style="2d", width=3840, height=2160, seed=3)
    return make_one_frame_video(_folder(tmp_path_factory) / "frame_4k.mp4", spec)

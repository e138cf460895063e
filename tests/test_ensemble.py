"""`factory ensemble`: stored detectors published as one voting model, and what its users then run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from actors.detection import make_detector
from factory.cli import main
from factory.models import SHIPPED_STORE, ModelStore
from factory.synthetic.anime_faces import AnimeFaceConfig, draw_scene
from factory.train.detector import real_art_metrics
from factory.train.ensemble import publish_ensemble
from factory.train.real_art import load_real_art

SINGLE = SHIPPED_STORE / "detector" / "1"  # one YOLO model, the factory's own


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    """A real-art-style folder (images + boxes.json) of procedural drawings from a seed no training used."""
    folder = tmp_path_factory.mktemp("drawings")
    listing = {}
    for i in range(6):
        rgb, boxes, _ = draw_scene(np.random.default_rng([77, i]), AnimeFaceConfig(seed=77, background_rate=0.0))
        Image.fromarray(rgb).save(folder / f"d{i}.png")
        listing[f"d{i}.png"] = [list(map(float, b)) for b in boxes]
    (folder / "boxes.json").write_text(json.dumps(listing))
    return folder


def test_an_ensemble_publishes_its_members_and_scores_its_vote(tmp_path, monkeypatch, drawings):
    """Two copies of one model vote to exactly that model's boxes, so the ensemble's stored real-art
    score is the single model's; the stored model lists both weights and `yolo:NAME` runs the vote."""
    store = str(tmp_path / "store")
    ref = publish_ensemble([str(SINGLE), str(SINGLE)], store, "pair", real_art=str(drawings))
    stored = ModelStore(store).fetch(ref)
    assert stored.manifest["weights"] == ["member0.pt", "member1.pt"] and len(stored.manifest["members"]) == 2
    assert stored.file("member1.pt").read_bytes() == (SINGLE / "best.pt").read_bytes()
    single = real_art_metrics(f"yolo:{SINGLE / 'best.pt'}", load_real_art(drawings), str(drawings), 0.6)
    assert stored.metrics["real_art"] == single and single["found"] > 0
    assert stored.metrics["members"][0]["map50"] == ModelStore(str(SHIPPED_STORE)).fetch("detector@1").metrics["map50"]
    monkeypatch.setenv("FACTORY_MODEL_STORE", store)
    assert make_detector("yolo:pair").views == 2


def test_bad_ensembles_end_in_one_line_errors(tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["ensemble", "--member", str(SINGLE), "--model-store", store]) == 1
    assert "two or more" in capsys.readouterr().err
    ModelStore(store).publish("clf", {"c.pt": b"x"}, {}, {"kind": "classifier", "weights": "c.pt"})
    assert main(["ensemble", "--member", str(SINGLE), "--member", "clf", "--model-store", store]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "clf: not a single stored YOLO detector" in err
    assert main(["ensemble", "--member", str(SINGLE), "--member", str(SINGLE), "--model-store", store,
                 "--real-art", str(tmp_path / "nowhere")]) == 1
    assert "boxes.json" in capsys.readouterr().err
    assert ModelStore(store).versions("detector") == []  # nothing written by a failed run

"""Classifier training on synthetic characters whose class shows in their look.

Accuracy is measured on held-out characters and compared with chance (1/3)
plus a margin; the model is EfficientNet-B0 from scratch (no weights exist
offline), trained for a short CPU schedule.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from factory.models import ModelStore
from factory.synthetic.faces import FaceDatasetConfig, write_face_dataset
from factory.train.classifier import ClassifierConfig, class_weights, train_classifier
from actors.classification import ClassifierPredictor, MultiTaskNet
from factory.train.data import identity_split, load_face_samples
from factory.train.labels import LabelTable, age_group_of, sample_label

MARGIN = 0.15  # accuracy must beat chance by this much


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("renders"))
    write_face_dataset(url, FaceDatasetConfig(characters=24, images_per_character=10, seed=5))
    return url


def test_split_keeps_identities_apart(renders):
    splits = identity_split(load_face_samples(renders), 0.25, seed=0)
    train_ids = {s.model_id for s in splits["train"]}
    test_ids = {s.model_id for s in splits["test"]}
    assert train_ids and test_ids and not train_ids & test_ids


def test_csv_labels_win_over_json(renders, tmp_path):
    sample = load_face_samples(renders)[0]
    path = tmp_path / "labels.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["model_id", "gender", "age"], [sample.model_id, "Female", "15"]])
    table = LabelTable.from_csv(path)
    assert sample_label(sample, "gender", table) == "female"
    assert sample_label(sample, "age_group", table) == "10-19"
    assert sample_label(sample, "gender", LabelTable.empty()) == sample.meta["labels"]["gender"]
    assert [age_group_of(a) for a in (3, 10, 19.5, 20)] == ["0-9", "10-19", "10-19", "20+"]


def test_class_weights_favour_rare_classes():
    weights = class_weights(np.array([0, 0, 0, 1, -1]), 3)
    assert weights[1] > weights[0] > 0 and weights[2] == 0


def test_init_weights_load_a_local_backbone(renders, tmp_path):
    source = MultiTaskNet("b0", {"gender": ("a", "b", "c")})
    path = tmp_path / "backbone.pt"
    torch.save({"state_dict": source.backbone.state_dict()}, path)
    config = ClassifierConfig(init_weights=str(path))
    from factory.train.classifier import build_net

    net = build_net(config)
    first = next(iter(source.backbone.state_dict()))
    assert torch.equal(net.backbone.state_dict()[first], source.backbone.state_dict()[first])
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no tensor matches"):
        build_net(ClassifierConfig(init_weights=str(tmp_path / "other.pt")))


@pytest.mark.slow
def test_classifier_beats_chance_on_unseen_characters(renders, tmp_path, capsys):
    store = str(tmp_path / "store")
    config = ClassifierConfig(epochs=15, image_size=64, batch=16, lr=3e-3, threads=1)

    ref = train_classifier(renders, store, config)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("classifier epoch")]
    assert [line.split()[2] for line in lines] == [f"{e}/15:" for e in range(1, 16)]  # one line per epoch

    stored = ModelStore(store).fetch(ref)
    metrics = stored.metrics
    print(f"classifier metrics: { {k: v for k, v in metrics.items() if not isinstance(v, dict)} }")
    for task in ("gender", "age_group"):
        chance = metrics[task]["chance"]
        assert chance == pytest.approx(1 / 3, abs=1e-3)
        assert metrics[task]["accuracy"] >= chance + MARGIN, metrics[task]
        assert sum(metrics[task]["support"].values()) == metrics["test_faces"]
        assert stored.file(f"confusion_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(stored.file("labels.json").read_bytes())["gender"] == ["male", "female", "child"]

    # The stored checkpoint predicts through the same code Serve uses.
    sample = load_face_samples(renders)[0]
    rgb = np.ascontiguousarray(sample.rgba()[..., :3])
    answer = ClassifierPredictor(stored.file("classifier.pt"))([rgb], [sample.face_bbox])[0]
    assert set(answer) == {"gender", "age_group"}
    assert sum(answer["gender"]["probs"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_ray_train_path_trains_and_stores_on_a_cpu_cluster(renders, tmp_path, ray_local):
    store = str(tmp_path / "store")
    config = ClassifierConfig(trainer="ray", epochs=1, image_size=32, batch=32, threads=1, tasks=("gender",))
    ref = train_classifier(renders, store, config)
    stored = ModelStore(store).fetch(ref)
    assert stored.manifest["trained_by"] == "ray-train-torch (1 CPU worker)"
    assert 0.0 <= stored.metrics["gender"]["accuracy"] <= 1.0 and stored.metrics["test_faces"] > 0
    sample = load_face_samples(renders)[0]
    answer = ClassifierPredictor(stored.file("classifier.pt"))([np.ascontiguousarray(sample.rgba()[..., :3])])[0]
    assert set(answer) == {"gender"}

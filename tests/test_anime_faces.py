"""Procedural 2D anime illustrations (factory/synthetic/anime_faces.py): boxes, seeds, YOLO labels."""

from __future__ import annotations

import numpy as np

from factory.synthetic.anime_faces import AnimeFaceConfig, scene_row, write_anime_face_dataset
from factory.train.data import load_face_samples
from factory.train.detector import DetectorConfig, build_yolo_dataset

CONFIG = AnimeFaceConfig(images=24, size=192, seed=4)


def test_a_seed_draws_the_same_image_and_boxes():
    a, b = scene_row(CONFIG, 3), scene_row(CONFIG, 3)
    assert a["png"] == b["png"] and a["json"] == b["json"]
    assert scene_row(CONFIG, 4)["png"] != a["png"]


def test_face_boxes_lie_in_the_image_and_spread_over_it():
    boxes = [box for i in range(CONFIG.images) for box in scene_row(CONFIG, i)["json"]["face_boxes"]]
    arr = np.array(boxes)
    assert len(boxes) >= CONFIG.images  # at least one labelled face an image
    assert (arr >= 0).all() and (arr <= CONFIG.size).all()
    assert (arr[:, 2] > arr[:, 0]).all() and (arr[:, 3] > arr[:, 1]).all()
    centres = (arr[:, :2] + arr[:, 2:]) / 2
    # faces all over the frame, not only where a mis-scaled visibility mask happens to land (top left)
    assert (centres[:, 0] > CONFIG.size / 2).sum() >= len(boxes) // 4
    assert (centres[:, 1] > CONFIG.size / 2).sum() >= len(boxes) // 4


def test_the_yolo_labels_of_an_image_hold_every_face(tmp_path):
    out = str(tmp_path / "faces")
    write_anime_face_dataset(out, AnimeFaceConfig(images=12, size=160, seed=2))
    samples = load_face_samples(out)
    assert len(samples) == 12
    many = [s for s in samples if len(s.meta["face_boxes"]) > 1]
    assert many, "no image with several faces in 12"
    build_yolo_dataset({"train": samples, "test": []}, tmp_path / "yolo", DetectorConfig())
    for sample in many:
        lines = (tmp_path / "yolo" / "labels" / "train" / f"{sample.key}_0.txt").read_text().splitlines()
        assert len(lines) == len(sample.meta["face_boxes"])
        x0, y0, x1, y1 = sample.meta["face_boxes"][0]
        cx = float(lines[0].split()[1]) * 160
        assert abs(cx - (x0 + x1) / 2) < 0.5

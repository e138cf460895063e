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
    metas = [scene_row(CONFIG, i)["json"] for i in range(CONFIG.images)]
    boxes = [box for meta in metas for box in meta["face_boxes"]]
    arr = np.array(boxes)
    drawn = [m for m in metas if m["face_bbox"] is not None]  # the rest are background images
    assert all(m["face_boxes"] for m in drawn) and len(drawn) >= CONFIG.images * 0.7
    assert (arr >= 0).all() and (arr <= CONFIG.size).all()
    assert (arr[:, 2] > arr[:, 0]).all() and (arr[:, 3] > arr[:, 1]).all()
    centres = (arr[:, :2] + arr[:, 2:]) / 2
    # faces all over the frame, not only where a mis-scaled visibility mask happens to land (top left)
    assert (centres[:, 0] > CONFIG.size / 2).sum() >= len(boxes) // 4
    assert (centres[:, 1] > CONFIG.size / 2).sum() >= len(boxes) // 4


def test_the_yolo_labels_of_an_image_hold_every_face(tmp_path):
    out = str(tmp_path / "faces")
    write_anime_face_dataset(out, AnimeFaceConfig(images=12, size=160, seed=2))
    samples = load_face_samples(out, faceless=True)
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


def test_a_face_hidden_behind_another_character_loses_its_box():
    from factory.synthetic.anime_faces import MIN_VISIBLE, visible_boxes

    size = 100
    face = np.zeros((size, size), np.uint8)
    face[20:40, 20:40] = 255  # 400 face pixels of character 0, box (20, 20, 40, 40)
    box = (20.0, 20.0, 40.0, 40.0)
    for covered_rows, kept in ((20, False), (round(20 * (1 - MIN_VISIBLE)) - 1, True), (round(20 * (1 - MIN_VISIBLE)) + 2, False)):
        owner = np.full((size, size), -1, np.int16)
        owner[face > 0] = 0
        owner[20 : 20 + covered_rows, 0:size] = 1  # character 1 drawn over the top rows
        assert (visible_boxes([box, None], [face, None], owner, size) == [[20.0, 20.0, 40.0, 40.0]]) == kept, covered_rows
    cut = (-30.0, 20.0, 10.0, 40.0)  # three quarters outside the frame
    assert visible_boxes([cut], [face], np.zeros((size, size), np.int16), size) == []


def test_background_images_show_no_face_and_train_the_detector_with_an_empty_label(tmp_path):
    out = str(tmp_path / "faces")
    write_anime_face_dataset(out, AnimeFaceConfig(images=40, size=128, seed=5, background_rate=0.3))
    everything = load_face_samples(out, faceless=True)
    backgrounds = [s for s in everything if s.meta["face_bbox"] is None]
    assert len(everything) == 40 and 5 <= len(backgrounds) <= 20  # 30 % of 40, drawn per image
    assert all(s.meta["face_boxes"] == [] and s.face_boxes == [] for s in backgrounds)
    # a classifier's loader (the default) never sees an image of no face
    assert {s.key for s in load_face_samples(out)} == {s.key for s in everything} - {s.key for s in backgrounds}
    build_yolo_dataset({"train": everything, "test": []}, tmp_path / "yolo", DetectorConfig())
    labels = tmp_path / "yolo" / "labels" / "train"
    assert all((labels / f"{s.key}_0.txt").read_text() == "" for s in backgrounds)
    assert all((labels / f"{s.key}_0.txt").read_text().count("\n") == len(s.face_boxes) for s in everything)


def test_hands_and_bows_draw_beside_the_face_never_over_it():
    """Hands and hair bows (non-faces that real art shows next to faces) add skin-coloured pixels
    outside the face; the face's own mask and its inside are left as they were."""
    from dataclasses import replace

    from factory.synthetic.anime_draw import Placement, draw_character, random_look

    place = Placement(cx=160, cy=120, scale=40, roll_deg=0, turn=0, mirror=False)
    look = replace(random_look(np.random.default_rng(3)), hands=0, bow=None)
    bare_rgb, bare_alpha, bare_face = draw_character(look, place, 320, 320, np.random.default_rng(1))
    hands = replace(look, hands=2, bow=(230, 40, 90))
    rgb, alpha, face = draw_character(hands, place, 320, 320, np.random.default_rng(1))
    assert (face == bare_face).all()
    inside = face > 0
    inside[: int(place.cy - 0.3 * place.scale)] = False  # the bow sits on the hair above the brows
    assert (rgb[inside] == bare_rgb[inside]).all()
    assert (alpha > 0).sum() > (bare_alpha > 0).sum() + 500  # the hands and bow cover new ground

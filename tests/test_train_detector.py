"""Detector training on synthetic renders: mAP@0.5 on characters it never saw.

The schedule is the CI one (YOLO11n from its YAML, 128 px, 15 epochs,
about 1-2 minutes on 2 cores); the longer schedule's figures are in
docs/TRAINING.md. The network is blocked for the whole training run, so any
download attempt by ultralytics (fonts, weights, pip) fails the test.
"""

from __future__ import annotations

import json
import socket

import numpy as np

import pytest

from factory.models import ModelStore
from factory.synthetic.faces import FaceDatasetConfig, write_face_dataset
from factory.train.detector import DetectorConfig, train_detector

# Measured on this schedule: mAP@0.5 0.99 on 6 held-out characters (docs/TRAINING.md).
MIN_MAP50 = 0.8


@pytest.fixture
def no_network(monkeypatch):
    """Refuse every outgoing connection and DNS lookup."""

    def refuse(*args, **kwargs):
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.slow
def test_detector_learns_unseen_characters(tmp_path, no_network):
    data = str(tmp_path / "renders")
    write_face_dataset(data, FaceDatasetConfig(characters=24, images_per_character=10, seed=3))
    store = str(tmp_path / "store")
    art = _real_art_folder(data, tmp_path / "art")
    config = DetectorConfig(epochs=15, imgsz=128, batch=8, threads=1, real_art=str(art))

    ref = train_detector(data, store, config)

    stored = ModelStore(store).fetch(ref)
    metrics = stored.metrics
    print(f"detector metrics: {metrics}")
    assert metrics["test_models"] >= 3 and metrics["train_models"] > metrics["test_models"]
    assert metrics["map50"] >= MIN_MAP50
    assert 0.0 < metrics["map50_95"] <= metrics["map50"]
    assert stored.file("best.pt").stat().st_size > 0
    assert stored.manifest["label_map"] == {"0": "face"}
    shards = stored.manifest["data"]["shards"]
    assert {s["split"] for s in shards} == {"train", "test"} and all(s["samples"] > 0 for s in shards)
    art_score = metrics["real_art"]  # scored after training at the default confidence, as /models reports it
    assert (art_score["images"], art_score["faces"], art_score["folder"]) == (4, 4, "art")
    assert art_score["confidence"] == config.confidence and art_score["found"] >= 1


def _real_art_folder(data: str, folder) -> str:
    """Four held-out renders as JPEGs on grey with a boxes.json: the layout of a real-art set."""
    from PIL import Image

    from factory.train.data import load_face_samples

    folder.mkdir()
    listing = {}
    for sample in [s for s in load_face_samples(data) if s.split == "test"][:4]:
        rgba = Image.fromarray(sample.rgba())
        canvas = Image.new("RGB", rgba.size, (128, 128, 128))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        canvas.save(folder / f"{sample.key}.jpg", quality=92)
        listing[f"{sample.key}.jpg"] = [list(sample.face_bbox)]
    (folder / "boxes.json").write_text(json.dumps(listing))
    return folder


def test_model_yaml_is_required():
    with pytest.raises(ValueError, match="YAML"):
        DetectorConfig(model_yaml="yolo11n.pt")


@pytest.mark.slow
def test_video_frames_pseudo_labelled_by_mediapipe_join_the_train_split(talking_3d, tmp_path, ray_local, capsys):
    from factory.pipelines.frames import run_frames
    from factory.train.pseudo import pseudo_labelled_frames

    frames = str(tmp_path / "frames")
    run_frames([str(talking_3d.path)], frames)
    samples, counts = pseudo_labelled_frames(frames)
    print(f"pseudo-labels: {counts}")
    assert 0 < counts["pseudo_frames_used"] == len(samples) <= counts["pseudo_frames_seen"]
    for sample in samples:  # each box sits on a face the video drew in that frame
        meta, (x0, y0, x1, y1) = sample.meta, sample.box
        scale = sample.rgba().shape[1] / meta["width"]
        cx, cy = (x0 + x1) / 2 / scale, (y0 + y1) / 2 / scale
        heads = [f.boxes[meta["frame_index"]] for f in talking_3d.faces if not np.isnan(f.boxes[meta["frame_index"]]).any()]
        assert any(h[0] <= cx <= h[2] and h[1] <= cy <= h[3] for h in heads), (sample.key, sample.box)

    renders = str(tmp_path / "renders")
    write_face_dataset(renders, FaceDatasetConfig(characters=6, images_per_character=3, seed=7))
    store = str(tmp_path / "store")
    from ultralytics.utils import NUM_THREADS

    threads = NUM_THREADS + 1  # ultralytics' trainer resets torch to NUM_THREADS: --threads must win
    alone = ModelStore(store).fetch(train_detector(renders, store, DetectorConfig(epochs=1, imgsz=64, batch=4, threads=threads)))
    assert alone.metrics["train_threads"] == threads
    assert "detector epoch 1/1: loss" in capsys.readouterr().out  # one progress line per epoch
    config = DetectorConfig(name="with-video", epochs=1, imgsz=64, batch=4, threads=1, pseudo_labels=frames)
    stored = ModelStore(store).fetch(train_detector(renders, store, config))
    assert stored.metrics["pseudo_frames_used"] == len(samples)
    assert stored.metrics["train_images"] == alone.metrics["train_images"] + len(samples)
    assert stored.metrics["test_images"] == alone.metrics["test_images"]  # evaluation stays on renders
    assert stored.manifest["pseudo_label_data"]["shards"]


def test_detector_data_from_several_datasets_keeps_every_sample_apart(tmp_path):
    """Two runs that reuse keys (same seed) still give one sample each, with distinct keys."""
    from factory.train.data import load_face_samples, load_face_samples_from

    urls = [str(tmp_path / name) for name in ("a", "b")]
    for url in urls:
        write_face_dataset(url, FaceDatasetConfig(characters=2, images_per_character=2, seed=5))
    one = load_face_samples(urls[0])
    both = load_face_samples_from(urls)

    assert len(both) == 2 * len(one) > 0
    assert len({s.key for s in both}) == len(both)
    assert [s.key for s in both[: len(one)]] == [f"0-{s.key}" for s in one]


def test_train_cli_takes_several_data_urls_and_a_mosaic_schedule():
    import argparse

    from factory.train.cli import add_train_arguments

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["detector", "--data", "a", "--data", "s3://b/c", "--close-mosaic", "3"])
    assert args.data == ["a", "s3://b/c"] and args.close_mosaic == 3


def test_mosaic_stays_on_for_most_of_a_short_schedule():
    # ultralytics' close_mosaic default (10) would switch mosaic off for the whole of a 10-epoch run
    assert DetectorConfig(epochs=10).mosaic_off_epochs == 2
    assert DetectorConfig(epochs=10, close_mosaic=0).mosaic_off_epochs == 0
    assert DetectorConfig(epochs=4, close_mosaic=9).mosaic_off_epochs == 4
    with pytest.raises(ValueError, match="close_mosaic"):
        DetectorConfig(close_mosaic=-1)

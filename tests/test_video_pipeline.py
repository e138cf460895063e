"""`factory video` end to end: real decode, MediaPipe, VAD, ffmpeg; then through a real local Ray to disk and S3."""

from __future__ import annotations

from dataclasses import asdict

import io
import json
import wave

import cv2
import numpy as np
import pytest

from factory.dataset import read_errors
from factory.members import unpack_faces
from factory.pipelines.inputs import video_items
from factory.pipelines.video import VideoConfig, VideoMiner, anivid, run_video
from factory.sources.entries import file_id as video_id
from factory.shards import ShardLimits, committed_stats, iter_samples, read_index
from factory.storage import open_location
from factory.synthetic.video import VideoSpec, make_video

ANY = VideoConfig(style_filter="any")
CONTRACT = {
    "kind", "video_id", "source_url", "track_id", "start_s", "end_s", "fps", "style", "style_score", "detector",
    "det_score", "bbox", "landmarks", "yaw", "pitch", "eye_openness", "frontal_score", "frame_times", "audio",
}  # fmt: skip


@pytest.fixture(scope="module")
def miner():
    return VideoMiner(ANY)


def _mine(miner, path) -> list[dict]:
    return miner(asdict(video_items(str(path))[0]))


def _main_faces(video):
    """Truth of the main face of each shot (the largest)."""
    return sorted((f for f in video.faces if f.face_id != "c"), key=lambda f: f.start_s)


@pytest.mark.parametrize("name", ["talking_3d", "talking_2d"])
def test_one_track_per_shot_spans_the_face_and_never_crosses_the_cut(name, request, miner):
    video = request.getfixturevalue(name)
    rows = _mine(miner, video.path)
    metas = sorted((r["json"] for r in rows), key=lambda m: m["start_s"])
    truths = _main_faces(video)
    assert len(metas) == len(truths) == 2
    cut = video.cut_times[0]
    for meta, truth in zip(metas, truths):
        assert abs(meta["start_s"] - truth.start_s) <= 0.5 and abs(meta["end_s"] - truth.end_s) <= 0.5
        assert all(t < cut for t in meta["frame_times"]) or all(t >= cut for t in meta["frame_times"])
        assert CONTRACT <= set(meta) and meta["kind"] == "video_face" and meta["style"] == video.style
    keys = [r["__key__"] for r in rows]
    assert keys == [f"{video_id(str(video.path))}_t_000", f"{video_id(str(video.path))}_t_001"]


def test_sample_fields_follow_the_contract(talking_3d, miner):
    row = _mine(miner, talking_3d.path)[0]
    face = cv2.imdecode(np.frombuffer(row["jpg"], np.uint8), cv2.IMREAD_COLOR)
    assert face.shape == (128, 128, 3)
    assert {k for k in row if not k.startswith("__")} == {"jpg", "faces.jpg", "voice", "json"}
    assert 1 <= len(unpack_faces(row["faces.jpg"])) == len(row["json"]["face_times"]) <= 5
    with wave.open(io.BytesIO(row["voice"])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert 3.0 <= wav.getnframes() / 16000 <= 19.0
    meta = row["json"]
    assert meta["detector"]["name"] == "mediapipe" and meta["detector"]["version"]
    assert set(meta["audio"]) >= {"duration_s", "speech_ratio", "vad", "denoise"}
    assert meta["audio"]["duration_s"] == pytest.approx(wav.getnframes() / 16000, abs=0.01)
    assert 0.8 <= meta["frontal_score"] <= 1.0 and meta["det_score"] >= 0.5
    # The speech of the first shot (1.0 s onwards) lies in the clip.
    assert meta["audio"]["start_s"] >= 0.5 and meta["audio"]["end_s"] <= meta["end_s"]


def test_wrong_style_is_an_empty_row_with_its_reason(talking_2d):
    rows = VideoMiner(VideoConfig(style_filter="3d"))(asdict(video_items(str(talking_2d.path))[0]))
    [row] = rows
    assert row["__status__"] == "empty" and "not the wanted 3d" in row["json"]["reason"]
    assert "sampled frames" in row["json"]["reason"]  # 6 key frames: too few for the pre-check


def test_style_filter_rejects_from_key_frames_before_any_detection(tmp_path):
    spec = VideoSpec(style="2d", duration_s=5.0, cut_s=None, speech=(), keyframe_interval=12, seed=3)
    video = make_video(tmp_path / "keyed_2d.mp4", spec)  # a key frame every 0.5 s
    miner = VideoMiner(VideoConfig(style_filter="3d"))
    calls, detect = [], miner.detector
    miner.detector = lambda frames: calls.append(len(frames)) or detect(frames)
    [row] = miner(asdict(video_items(str(video.path))[0]))
    assert row["__status__"] == "empty" and "key frames" in row["json"]["reason"]
    assert row["json"]["style"] == "2d" and calls == []  # pass 1 never ran


def test_anivid_keeps_single_face_shots_with_a_256_clip(talking_2d):
    rows = VideoMiner(anivid(ANY))(asdict(video_items(str(talking_2d.path))[0]))
    # Shot 0 holds two faces: only the single-face shot after the cut gives a clip.
    [row] = rows
    assert row["json"]["start_s"] >= talking_2d.cut_times[0] - 0.5 and row["json"]["motion_score"] >= 0.35
    path = talking_2d.path.parent / "anivid_clip.mp4"
    path.write_bytes(row["mp4"])
    cap = cv2.VideoCapture(str(path))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (256, 256)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(talking_2d.spec.fps, abs=0.1)
    span = row["json"]["end_s"] - row["json"]["start_s"]
    assert abs(frames - span * talking_2d.spec.fps) <= 2


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_ray_run_writes_committed_shards_and_isolates_bad_inputs(
    where, talking_3d, silent_video, one_frame_video, frame_4k_video, bad_files, tmp_path, ray_local, request
):
    url = str(tmp_path / "ds") if where == "local" else f"{request.getfixturevalue('s3_env')}/ds"
    good = [talking_3d.path, silent_video.path, one_frame_video.path, frame_4k_video.path]
    bad = [bad_files["zero_byte"], bad_files["corrupt_header"]]
    inputs = [str(p) for p in good + bad]
    config = VideoConfig(style_filter="any", workers=(1, 2), limits=ShardLimits(max_samples=2))
    result = run_video(inputs, url, config)
    out = open_location(url)
    assert committed_stats(out)
    samples = list(iter_samples(out))
    by_video: dict[str, list[dict]] = {}
    for s in samples:
        meta = json.loads(s["json"])
        by_video.setdefault(meta["video_id"], []).append(meta)
        assert s["__key__"].startswith(meta["video_id"] + "_t_") and "jpg" in s
    assert len(by_video[video_id(str(talking_3d.path))]) == 2
    [silent] = by_video[video_id(str(silent_video.path))]  # no audio stream: a face track, no wav
    assert silent["audio"]["has_audio"] is False and silent["audio"]["duration_s"] == 0.0
    index = read_index(out).to_pylist()
    status = {r["input_id"]: r["status"] for r in index}
    # One frame (also at 4K) cannot hold a 2 s track: a documented empty result.
    assert status[video_id(str(one_frame_video.path))] == "empty"
    assert status[video_id(str(frame_4k_video.path))] == "empty"
    errors = read_errors(out).to_pylist()
    assert sorted(e["input_id"] for e in errors) == sorted(video_id(str(p)) for p in bad)
    assert all("\n" not in e["error"] for e in errors)
    assert result.dataset["counts"]["samples"] == 3


def test_labels_come_only_from_a_stored_classifier(talking_3d, tmp_path, monkeypatch, miner):
    from factory.synthetic.faces import FaceDatasetConfig, write_face_dataset
    from factory.train.classifier import ClassifierConfig, train_classifier

    write_face_dataset(str(tmp_path / "faces"), FaceDatasetConfig(characters=6, images_per_character=3, seed=7))
    monkeypatch.setenv("FACTORY_MODEL_STORE", str(tmp_path / "store"))
    train_classifier(str(tmp_path / "faces"), None, ClassifierConfig(epochs=1, image_size=32, batch=8, threads=1))
    labelled = VideoMiner(VideoConfig(style_filter="any", classifier="classifier"))
    rows = labelled(asdict(video_items(str(talking_3d.path))[0]))
    assert len(rows) == 2
    for row in rows:
        labels = row["json"]["labels"]
        assert labels["model_version"] == "classifier@1"
        assert labels["gender"] in ("male", "female", "child") and labels["age_group"] in ("0-9", "10-19", "20+")
        assert abs(sum(labels["probs"]["gender"].values()) - 1) < 0.01
    assert all("labels" not in row["json"] for row in _mine(miner, talking_3d.path))  # never invented


def test_a_track_no_landmarker_fits_keeps_its_best_faces_upright_around_the_box(miner):
    """Faces without keypoints that the face mesh and nvxs miss (flat grey here, a YOLO box) are not dropped."""
    from actors.detection import Detection
    from factory.pipelines.video import Scan
    from factory.video.align import BOX_SOURCE, box_landmarks
    from factory.video.candidates import face_crop
    from factory.video.tracks import Track

    frame = np.full((240, 320, 3), 128, np.uint8)
    scan = Scan()
    for i in range(7):
        face = Detection(bbox=(100.0 + i, 60.0, 180.0 + i, 140.0), score=0.6 + 0.05 * i)  # no landmarks
        scan.detections.append([face])
        scan.picked.append(face)
        scan.crops.append(face_crop(frame, face, miner.config.frontal.mesh_margin, miner.config.align.crop_margin))
    track = Track(0, 0, tuple(range(7)), (0,) * 7, tuple(0.5 * i for i in range(7)), 0.0, 3.5)
    chosen = miner._choose(scan, track, "2d")
    assert [c.sample for c in chosen] == [6, 5, 4, 3, 2]  # the 5 best detector scores
    assert all(c.landmarks.source == BOX_SOURCE and c.measure is None for c in chosen)
    assert chosen[0].landmarks == box_landmarks(scan.picked[6].bbox)
    eyes = chosen[0].landmarks.eyes
    assert eyes[0][1] == eyes[1][1] and eyes[0][0] < eyes[1][0]  # level: an unrotated crop

"""`factory export`: every layout read back by the loader its users run.

Render data comes from the synthetic face renders (render contract, real
PNGs); video-face and character data are written with ``ShardedWriter`` to
their sample contracts (real JPEGs, real 16 kHz WAVs), so the exporters read
real committed shards.
"""

from __future__ import annotations

import io
import json
import os
import re
import wave
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from factory.export.run import export
from factory.export.source import ExportError
from factory.export.target import MARKER, prepare_folder
from factory.render.morphs import POSE_NAMES
from factory.shards import SequentialAllocator, ShardedWriter, make_key
from factory.storage import open_location
from factory.synthetic.faces import FaceDatasetConfig, character_rows, make_characters
from tests import test_train_detector
from tests.test_cli import factory

RATE = 16000
CROP = 128
no_network = test_train_detector.no_network  # the fixture that blocks every connection
GOCHIUSA_NAME = re.compile(r"^(?P<video>.+)-(?P<kind>[kp])-(?P<frame>\d+)-(?P<face>\d+)\.png$")


def _write(url: str, rows: list[dict]) -> str:
    for row in rows:
        row.setdefault("__input__", row["__key__"])
        row.setdefault("__input_rows__", 1)
        row.setdefault("__split__", "all")
    with ShardedWriter(open_location(url), SequentialAllocator()) as writer:
        writer.write_all(rows)
    return url


def _jpeg(rng: np.random.Generator) -> bytes:
    return cv2.imencode(".jpg", rng.integers(0, 255, (CROP, CROP, 3), dtype=np.uint8))[1].tobytes()


def _wav(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> str:
    """6 synthetic characters x 4 renders; every other render is 'rotated' with a sampled pose."""
    config = FaceDatasetConfig(characters=6, images_per_character=4, seed=5)
    rng = np.random.default_rng(5)
    rows = []
    for ch in make_characters(config):
        for n, row in enumerate(character_rows(ch, config)):
            if n % 2:
                pose = [*rng.uniform(0, 1, 17).round(3), *rng.uniform(-20, 20, 3).round(2)]
                row["json"].update(partition="rotated", pose=[float(v) for v in pose])
            rows.append(row)
    return _write(str(tmp_path_factory.mktemp("renders")), rows)


# Video face tracks: (video, track, character_id or None, [(frame, kind), ...]).
TRACKS = [
    ("ep01", 0, "ep01_c_000", [(12, "k"), (48, "p")]),
    ("ep01", 1, "ep01_c_001", [(12, "k")]),
    ("ep02", 3, "ep01_c_000", [(250, "p"), (300, "p"), (301, "k")]),
    ("ep02", 4, None, [(40, "k")]),  # not grouped: no class, skipped
]


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> str:
    rng = np.random.default_rng(1)
    rows = []
    for video, track, character, faces in TRACKS:
        meta = {"kind": "video_face", "video_id": video, "track_id": track, "crop_size": CROP,
                "face_frames": [f for f, _ in faces], "face_frame_kinds": [k for _, k in faces]}
        if character:
            meta["character_id"] = character
        row = {"__key__": make_key(video, "t", f"{track:03d}"), "json": meta, "jpg": _jpeg(rng), "wav": _wav(3.0)}
        row.update({f"face{n}.jpg": _jpeg(rng) for n in range(1, len(faces))})
        rows.append(row)
    return _write(str(tmp_path_factory.mktemp("tracks")), rows)


# Characters: (id, name, labels, faces as (video, track, frame, kind), voice seconds).
CHARACTERS = [
    ("ep01_c_000", "Chino", {"gender": "female", "age_group": "10-19"},
     [("ep01", 0, 12, "k"), ("ep01", 0, 48, "p"), ("ep02", 3, 301, "k")], [3.5, 4.0]),
    ("ep01_c_001", None, {"gender": "male"}, [("ep01", 1, 12, "k"), ("ep01", 1, 90, None)], [3.0]),
    ("ep01_c_002", None, {}, [("ep02", 5, 7, "p")], [5.25, 3.0, 4.0]),
]


@pytest.fixture(scope="module")
def characters(tmp_path_factory) -> str:
    rng = np.random.default_rng(2)
    rows = []
    for cid, name, labels, faces, voices in CHARACTERS:
        files = ["jpg", *(f"face{n}.jpg" for n in range(1, len(faces)))]
        clips = ["wav", *(f"voice{n}.wav" for n in range(1, len(voices)))]
        meta = {
            "kind": "character", "character_id": cid, "name": name,
            "video_ids": sorted({v for v, *_ in faces}),
            "tracks": sorted({make_key(v, "t", f"{t:03d}") for v, t, *_ in faces}),
            "faces": [{"track_key": make_key(v, "t", f"{t:03d}"), "video_id": v, "face_time_s": frame / 24,
                       "frame_index": frame, "frame_kind": kind, "yaw": 0.0, "frontal_score": 0.9, "file": f}
                      for (v, t, frame, kind), f in zip(faces, files)],
            "voices": [{"track_key": make_key(faces[0][0], "t", f"{faces[0][1]:03d}"), "duration_s": s, "file": f}
                       for s, f in zip(voices, clips)],
        }
        if labels:
            meta["labels"] = labels
        row = {"__key__": cid, "json": meta}
        row.update({f: _jpeg(rng) for f in files})
        row.update({f: _wav(s) for f, s in zip(clips, voices)})
        rows.append(row)
    return _write(str(tmp_path_factory.mktemp("characters")), rows)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- imagefolder ----------------------------------------------------------------------------
def test_imagefolder_reads_back_in_torchvision(renders, characters, tmp_path):
    from torchvision.datasets import ImageFolder

    done = factory("export", "--data", renders, "--layout", "imagefolder", "--out", str(tmp_path / "by_model"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == 24
    by_model = ImageFolder(str(tmp_path / "by_model"))
    assert by_model.classes == sorted(ch.model_id for ch in make_characters(FaceDatasetConfig(characters=6, seed=5)))
    assert np.bincount(by_model.targets).tolist() == [4] * 6
    image, _ = by_model[0]
    assert image.size == (256, 256)

    export(renders, "imagefolder", str(tmp_path / "by_gender"), _options(class_by="gender"))
    by_gender = ImageFolder(str(tmp_path / "by_gender"))
    assert by_gender.classes == ["child", "female", "male"]
    assert np.bincount(by_gender.targets).tolist() == [8, 8, 8]

    # Characters by age group: all their faces; the one without a label is left out, not guessed.
    summary = export(characters, "imagefolder", str(tmp_path / "by_age"), _options(class_by="age_group"))
    by_age = ImageFolder(str(tmp_path / "by_age"))
    assert by_age.classes == ["10-19"] and len(by_age) == 3
    assert summary["skipped_without_class"] == 2


def _options(**kw):
    from factory.export.options import ExportOptions

    return ExportOptions(**kw)


# -- yolo -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_network")
def test_yolo_export_trains_one_epoch(renders, tmp_path):
    from actors.offline import import_ultralytics

    root = tmp_path / "yolo"
    summary = export(renders, "yolo", str(root))
    for split in ("train", "val"):
        images = sorted(p.stem for p in (root / "images" / split).iterdir())
        labels = sorted(p.stem for p in (root / "labels" / split).iterdir())
        assert images == labels and len(images) == summary[split]["images"] > 0
    line = next((root / "labels" / "train").iterdir()).read_text().split()
    assert line[0] == "0" and all(0 < float(v) <= 1 for v in line[1:])
    exported = _files(root)

    import torch

    torch.set_num_threads(1)
    model = import_ultralytics().YOLO("yolo11n.yaml")
    model.train(data=str(root / "data.yaml"), epochs=1, imgsz=64, batch=8, workers=0, device="cpu",
                project=str(tmp_path / "runs"), name="train", plots=False, amp=False, val=True, verbose=False)
    assert (tmp_path / "runs" / "train" / "weights" / "last.pt").stat().st_size > 0
    results = pd.read_csv(tmp_path / "runs" / "train" / "results.csv")
    assert len(results) == 1 and np.isfinite(results.filter(like="train/box_loss").to_numpy()).all()
    export(renders, "yolo", str(root))  # a rerun over the trained-on folder: the same bytes
    again = _files(root)
    assert [f for f, data in exported.items() if again.get(f) != data] == []


# -- animeceleb -----------------------------------------------------------------------------
def test_animeceleb_pose_csv_reads_back_in_pandas(renders, tmp_path):
    root = tmp_path / "celeb"
    summary = export(renders, "animeceleb", str(root))
    assert summary["images"] == {"frontal": 12, "rotated": 12}
    table = pd.read_csv(root / "pose.csv")
    pose = table[list(POSE_NAMES)]
    assert pose.shape == (24, 20) and list(table.columns[-3:]) == ["yaw", "pitch", "roll"]
    assert all((root / f).is_file() for f in table["file"])
    assert set(table["file"].str.split("/").str[0]) == {"frontal", "rotated"}
    frontal = table["file"].str.startswith("frontal/")
    assert (pose[frontal] == 0).all().all()  # the synthetic frontal renders carry a zero pose
    assert pose[~frontal][["yaw", "pitch", "roll"]].abs().max().max() > 1  # rotated: the sampled angles
    stored = {s.key: s.meta for s in _samples(renders)}
    first = table[~frontal].iloc[0]
    assert stored[Path(first["file"]).stem]["pose"] == pytest.approx(first[list(POSE_NAMES)].tolist())


def _samples(url: str):
    from factory.export.source import read_samples

    return list(read_samples(open_location(url), ("render", "character", "video_face")))


# -- gochiusa -------------------------------------------------------------------------------
def test_gochiusa_names_from_tracks(tracks, tmp_path):
    root = tmp_path / "gochi"
    summary = export(tracks, "gochiusa", str(root))
    found = {(os.path.basename(d), f) for d, _, files in os.walk(root) for f in files if f != MARKER}
    expected = {(c, f"{v}-{k}-{frame}-{t}.png") for v, t, c, faces in TRACKS if c for frame, k in faces}
    assert found == expected
    assert all(GOCHIUSA_NAME.match(f) for _, f in found)
    assert summary["skipped"] == {"without_class": 1}
    png = cv2.imread(str(root / "ep01_c_000" / "ep02-k-301-3.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (CROP, CROP, 3)  # the stored crop, not resized


def test_gochiusa_names_from_characters(characters, tmp_path):
    root = tmp_path / "gochi"
    summary = export(characters, "gochiusa", str(root))
    found = sorted(os.path.join(os.path.basename(d), f) for d, _, files in os.walk(root) for f in files if f != MARKER)
    assert found == [
        "ep01_c_000/ep01-k-12-0.png", "ep01_c_000/ep01-p-48-0.png", "ep01_c_000/ep02-k-301-3.png",
        "ep01_c_001/ep01-k-12-1.png", "ep01_c_002/ep02-p-7-5.png",
    ]
    assert summary["skipped"] == {"faces_without_frame": 1}  # frame 90 has no k/p kind: skipped


# -- korean-av ------------------------------------------------------------------------------
def test_korean_av_folders_and_csv(characters, tmp_path):
    root = tmp_path / "kav"
    export(characters, "korean-av", str(root))
    table = pd.read_csv(root / "characters.csv", keep_default_na=False).set_index("character")
    for cid, name, labels, faces, voices in CHARACTERS:
        names = sorted(os.listdir(root / cid))
        assert names == sorted([f"face{n}.jpg" for n in range(1, len(faces) + 1)]
                               + [f"voice{n}.wav" for n in range(1, len(voices) + 1)])
        seconds = 0.0
        for clip in (n for n in names if n.endswith(".wav")):
            with wave.open(str(root / cid / clip)) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
                seconds += w.getnframes() / w.getframerate()
        row = table.loc[cid]
        assert (row["n_faces"], row["n_clips"]) == (len(faces), len(voices))
        assert row["seconds"] == pytest.approx(seconds, abs=1e-3) == pytest.approx(sum(voices), abs=1e-3)
        assert (row["gender"], row["age_group"]) == (labels.get("gender", ""), labels.get("age_group", ""))
        assert row["name"] == (name or "")


# -- bad input, idempotence -----------------------------------------------------------------
def test_rerun_gives_the_same_files_and_foreign_folders_are_refused(characters, tracks, tmp_path):
    root = tmp_path / "out"
    export(characters, "korean-av", str(root))
    first = _files(root)
    (root / "ep01_c_000" / "face1.jpg").unlink()  # a damaged export is rewritten whole
    export(characters, "korean-av", str(root))
    assert _files(root) == first
    # An export cut off half-way: its marker says incomplete; the rerun clears what it left.
    cut = tmp_path / "cut"
    prepare_folder(str(cut), json.loads(first[MARKER])["data"], "korean-av")
    (cut / "ep01_c_000").mkdir()
    (cut / "ep01_c_000" / "face9.jpg").write_bytes(b"half")
    assert json.loads((cut / MARKER).read_text())["complete"] is False
    export(characters, "korean-av", str(cut))
    assert _files(cut) == first
    with pytest.raises(ExportError, match="holds the korean-av export"):
        export(characters, "gochiusa", str(root))
    export(characters, "imagefolder", str(tmp_path / "faces"))
    with pytest.raises(ExportError, match="holds the imagefolder export of .*characters"):
        export(tracks, "imagefolder", str(tmp_path / "faces"))  # other data, same layout
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="no export marker"):
        export(characters, "korean-av", str(foreign))
    assert (foreign / "notes.txt").read_text() == "mine"


def test_bad_input_ends_in_one_line(characters, tmp_path):
    empty = _write(str(tmp_path / "empty"), [{"__key__": "v1", "__error__": "no faces"}])
    cases = [
        (("--data", characters, "--layout", "coco"), "unknown layout 'coco'"),
        (("--data", characters, "--layout", "yolo"), "layout yolo reads render samples; .* holds 3 character"),
        (("--data", characters, "--layout", "animeceleb"), "layout animeceleb reads render samples"),
        (("--data", empty, "--layout", "imagefolder"), "holds no committed samples"),
    ]
    for args, message in cases:
        done = factory("export", *args, "--out", str(tmp_path / "x"))
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert re.search(message, done.stderr), done.stderr
    assert not (tmp_path / "x").exists()  # nothing written for bad input


# -- a real video-pipeline dataset ---------------------------------------------------------
def test_gochiusa_from_mined_tracks_names_real_frames(talking_3d, tmp_path):
    """Tracks mined by the real pipeline: each file names a frame that shows that face at its time."""
    import decord

    from factory.pipelines.inputs import video_items
    from factory.pipelines.video import VideoConfig, VideoMiner

    rows = VideoMiner(VideoConfig(style_filter="any"))(asdict(video_items(str(talking_3d.path))[0]))
    data = _write(str(tmp_path / "mined"), rows)
    summary = export(data, "gochiusa", str(tmp_path / "gochi"), _options(class_by="track_id"))
    reader = decord.VideoReader(str(talking_3d.path))
    keys, fps = set(reader.get_key_indices()), reader.get_avg_fps()
    times = {(m["track_id"], f): t for m in (r["json"] for r in rows) for f, t in zip(m["face_frames"], m["face_times"])}
    found = [(int(os.path.basename(d)), GOCHIUSA_NAME.match(f)) for d, _, files in os.walk(tmp_path / "gochi")
             for f in files if f != MARKER]
    assert len(found) == sum(summary["faces"].values()) == sum(len(m["json"]["face_frames"]) for m in rows) >= 2
    for track, name in found:
        frame = int(name["frame"])
        assert name["kind"] == ("k" if frame in keys else "p") and int(name["face"]) == track
        assert frame / fps == pytest.approx(times[(track, frame)], abs=1.5 / fps)


def test_export_reads_s3_data_like_local(characters, s3_env, tmp_path):
    """The same characters on the S3 API (moto server) export to the same files."""
    remote = _write(f"{s3_env}/characters", [{"__key__": s.key, **s.members} for s in _samples(characters)])
    export(characters, "korean-av", str(tmp_path / "local"))
    export(remote, "korean-av", str(tmp_path / "remote"))
    local, from_s3 = _files(tmp_path / "local"), _files(tmp_path / "remote")
    assert from_s3.keys() == local.keys() and len(local) > 10
    assert all(from_s3[f] == local[f] for f in local if f != MARKER)
    assert json.loads(from_s3[MARKER])["data"] == f"{s3_env}/characters"


def test_a_bad_member_is_counted_and_the_rest_goes_on(characters, tmp_path):
    """A clip that is not a WAV and a face that does not decode: left out, counted, the rest exported."""
    rows = [{"__key__": s.key, **s.members} for s in _samples(characters)]
    broken = next(r for r in rows if r["__key__"] == "ep01_c_001")
    broken["wav"], broken["jpg"] = b"RIFF but not a wav", b"not a jpeg"
    data = _write(str(tmp_path / "broken"), rows)
    summary = export(data, "korean-av", str(tmp_path / "kav"))
    assert summary["bad_clips"] == ["ep01_c_001.wav"] and summary["characters"] == 3
    table = pd.read_csv(tmp_path / "kav" / "characters.csv").set_index("character")
    assert table.loc["ep01_c_001", "n_clips"] == 0 and table.loc["ep01_c_000", "n_clips"] == 2
    summary = export(data, "gochiusa", str(tmp_path / "gochi"))
    assert summary["skipped"] == {"faces_not_decoding": 1, "faces_without_frame": 1}
    assert sum(summary["faces"].values()) == 4

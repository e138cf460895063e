"""Every dataset kind reads as is in its users' three readers (DESIGN's output contract).

One small dataset per kind, made once by the real pipelines: download,
frames, video (a talking and a silent video, so tracks with and without a
voice), characters, render (real bpy) and the synthetic faces the demo trains
on. Each is read with Hugging Face ``datasets`` (``data_dir=OUT/shards``, no
audio or video backend), ``webdataset.WebLoader`` with two workers (the
README's recipe) and ``ray.data.read_webdataset``; each must give back every
committed sample with every member and the whole json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.cli import main
from factory.dataset import read_errors
from factory.hf import features
from factory.members import unpack_faces
from factory.shards import (
    SequentialAllocator,
    ShardedWriter,
    committed_shard_paths,
    committed_shard_urls,
    iter_samples,
)
from factory.storage import Location, open_location

pytestmark = pytest.mark.slow
KINDS = ("download", "frames", "video", "characters", "render", "faces")


@pytest.fixture(scope="module")
def made(tmp_path_factory, ray_local, talking_3d, silent_video, one_frame_video, bad_files) -> dict[str, Location]:
    """kind -> a small committed dataset of that kind."""
    from factory.characters.run import run_characters
    from factory.pipelines.download import run_download
    from factory.pipelines.frames import run_frames
    from factory.pipelines.video import VideoConfig, run_video
    from factory.synthetic.faces import FaceDatasetConfig, write_face_dataset
    from tests.frames_job import SMALL as FRAMES

    root = tmp_path_factory.mktemp("readers")
    videos = [str(talking_3d.path), str(silent_video.path)]
    run_download(videos[:1], str(root / "download"))
    run_frames(videos[1:], str(root / "frames"), FRAMES)
    # plus an input that gives no track (empty) and one no decoder reads (error)
    odd = [str(one_frame_video.path), str(bad_files["corrupt_header"])]
    run_video(videos + odd, str(root / "video"), VideoConfig(style_filter="any", workers=(1, 1)))
    run_characters(str(root / "video"), str(root / "characters"))
    write_face_dataset(str(root / "faces"), FaceDatasetConfig(characters=4, images_per_character=2))
    made = {k: open_location(str(root / k)) for k in ("download", "frames", "video", "characters", "faces")}
    if _has_bpy():
        from factory.pipelines.render import run_render
        from tests.render_job import SMALL as RENDER
        from tests.render_models import write_good

        write_good(root / "models", 2, seed=4)
        run_render(str(root / "models"), str(root / "render"), RENDER)
        made["render"] = open_location(str(root / "render"))
    return made


def _has_bpy() -> bool:
    try:
        import bpy  # noqa: F401
    except ImportError:
        return False
    return True


def _dataset(made: dict[str, Location], kind: str) -> Location:
    if kind not in made:
        pytest.skip(f"no {kind} dataset here (bpy missing)")
    return made[kind]


def _truth(loc: Location) -> dict[str, dict]:
    """key -> {member: bytes} of the committed samples, read by the factory's own tar reader."""
    return {s["__key__"]: {k: v for k, v in s.items() if not k.startswith("__")} for s in iter_samples(loc)}


def test_every_sample_of_a_kind_has_the_same_members(made):
    for kind, loc in made.items():
        truth = _truth(loc)
        assert truth and loc.exists("dataset.json"), kind  # the synthetic faces too
        assert len({tuple(sorted(m)) for m in truth.values()}) == 1, (kind, {tuple(sorted(m)) for m in truth.values()})
    video = _truth(made["video"])
    voices = [m["voice"] for m in video.values()]
    assert any(v[:4] == b"RIFF" for v in voices) and any(v == b"" for v in voices)  # with and without speech
    for members in video.values():
        assert len(unpack_faces(members["faces.jpg"])) == len(json.loads(members["json"])["face_times"])


@pytest.mark.parametrize("kind", KINDS)
def test_hugging_face_datasets_loads_every_field(made, kind, tmp_path):
    import datasets

    loc = _dataset(made, kind)
    truth = _truth(loc)
    loaded = datasets.load_dataset("webdataset", data_dir=loc.path("shards"), cache_dir=str(tmp_path / "hf"))
    rows = {}
    for split in loaded.values():
        # Arrow rows: image / video columns as {bytes, path}; nothing decoded, so no backend is asked for.
        for row in split.data.table.to_pylist():
            rows[row["__key__"]] = row
    assert sorted(rows) == sorted(truth)
    for key, members in truth.items():
        row = rows[key]
        assert set(row) - {"__key__", "__url__"} == set(members), key
        for name, data in members.items():
            got = row[name]
            if name == "json":
                assert got == json.loads(data), (key, name)
            elif name == "txt":
                assert got == data.decode(), (key, name)
            else:
                assert (got["bytes"] if isinstance(got, dict) else got) == data, (key, name)
    # The same with the spec from the index (factory/hf.py): every sample's json, not the first 5 alone.
    spec = datasets.load_dataset("webdataset", data_dir=loc.path("shards"), cache_dir=str(tmp_path / "hf-spec"),
                                 features=features(loc))
    assert {r["__key__"]: r["json"] for part in spec.values() for r in part.data.table.to_pylist()} == {
        key: json.loads(members["json"]) for key, members in truth.items()}
    split = next(iter(loaded.values()))
    for name, feature in split.features.items():  # mp4 (download, AniVid) decodes with torchcodec: keep bytes
        if isinstance(feature, datasets.Video):
            split = split.cast_column(name, datasets.Video(decode=False))
    first = split[0]  # decoded by datasets' defaults: images as PIL
    image = first.get("png") or first.get("jpg")
    if image is not None:
        assert image.mode == ("RGBA" if "png" in first else "RGB")


@pytest.mark.parametrize("kind", KINDS)
def test_webdataset_with_two_workers_reads_every_sample(made, kind):
    """The README's recipe: one shard per worker, or empty_check=False for fewer shards than workers."""
    import webdataset as wds

    loc = _dataset(made, kind)
    urls = committed_shard_urls(loc)
    rgba = kind in ("render", "faces")  # png members: RGBA, transparent background
    pipeline = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgba8" if rgba else "rgb8")
    seen = {}
    for sample in wds.WebLoader(pipeline, num_workers=2, batch_size=None):
        seen[sample["__key__"]] = sample
    truth = _truth(loc)
    assert sorted(seen) == sorted(truth)
    for key, sample in seen.items():
        assert sample["json"] == json.loads(truth[key]["json"])
        if rgba:
            # WebLoader (a torch DataLoader) hands numpy arrays over as tensors
            assert tuple(sample["png"].shape) == (256, 256, 4) and str(sample["png"].dtype).endswith("uint8")


@pytest.mark.parametrize("kind", KINDS)
def test_ray_data_reads_every_sample(made, kind):
    import ray

    loc = _dataset(made, kind)
    ds = ray.data.read_webdataset(committed_shard_paths(loc), filesystem=loc.arrow_filesystem())
    rows = {r["__key__"]: r for r in ds.take_all()}
    truth = _truth(loc)
    assert sorted(rows) == sorted(truth)
    for key, row in rows.items():
        assert row["json"] == json.loads(truth[key]["json"]), key
        assert set(truth[key]) <= set(row), key


def test_readme_reading_section_names_the_recipes():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for needle in ('load_dataset("webdataset"', "empty_check=False", "read_webdataset", "num_workers=2", "wave.open"):
        assert needle in readme, needle


def _dataset_json(loc: Location) -> dict:
    return json.loads(loc.read_bytes("dataset.json"))


def test_dataset_json_inputs_and_errors_trace_the_run(made, talking_3d, silent_video, one_frame_video, bad_files):
    import pyarrow.parquet as pq

    loc = made["video"]
    info = _dataset_json(loc)
    assert len(info["code"]["git_commit"]) == 40 and info["code"]["version"]  # the tests run in a git checkout
    assert info["started"] <= info["finished"] and info["command"]["argv"]
    for tool in ("ffmpeg", "decord", "opencv-python", "mediapipe", "webrtcvad-wheels", "noisereduce", "torch", "ray"):
        assert info["versions"].get(tool), tool
    assert [m.split("@")[0] for m in info["models"]["detector"]] == ["mediapipe"]
    assert "@" in info["models"]["detector"][0] and _dataset_json(made["characters"])["models"]["embedding"]
    inputs = {r["url"]: r for r in pq.read_table(loc.path("inputs.parquet")).to_pylist()}
    paths = [talking_3d.path, silent_video.path, one_frame_video.path, bad_files["corrupt_header"]]
    assert sorted(inputs) == sorted(map(str, paths)) and info["inputs"]["count"] == 4
    assert inputs[str(one_frame_video.path)]["status"] == "empty"
    assert inputs[str(bad_files["corrupt_header"])]["status"] == "error"
    assert sum(r["samples"] for r in inputs.values()) == info["counts"]["samples"]
    problems = {r["url"]: r for r in read_errors(loc, include_empty=True).to_pylist()}
    assert sorted(problems) == sorted([str(one_frame_video.path), str(bad_files["corrupt_header"])])
    error, empty = problems[str(bad_files["corrupt_header"])], problems[str(one_frame_video.path)]
    assert error["status"] == "error" and error["error_class"] and error["stage"].startswith(("factory.", "actors."))
    assert error["error"].startswith(error["error_class"]) and "\n" not in error["error"]
    assert empty["status"] == "empty" and "no face track" in empty["reason"] and empty["error"] is None
    assert [r["status"] for r in read_errors(loc).to_pylist()] == ["error"]  # read_errors: the errors alone


def test_a_dataset_is_rebuilt_from_its_dataset_json_alone(ray_local, talking_3d, silent_video, tmp_path, capsys):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{talking_3d.path}\n{silent_video.path}\n{tmp_path / 'missing.mp4'}\n")
    assert main(["download", "--input", str(listing), "--out", first, "--shard-videos", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()  # progress against the known totals, first and last
    assert lines[0] == "download: 0/3 inputs, 0 shards committed, 0 samples"
    assert "download: 3/3 inputs, 3 shards committed, 2 samples" in lines  # one row a shard: 2 videos, 1 error
    command = _dataset_json(open_location(first))["command"]["factory"]
    assert command[:2] == ["factory", "download"]
    argv = command[1:]
    argv[argv.index("--out") + 1] = second  # the same command, another OUT
    assert main(argv) == 0
    a, b = open_location(first), open_location(second)
    assert sorted(_truth(a)) == sorted(_truth(b)) and len(_truth(a)) == 2
    assert _dataset_json(a)["config"] == _dataset_json(b)["config"]
    assert [r["input_id"] for r in read_errors(a).to_pylist()] == [r["input_id"] for r in read_errors(b).to_pylist()]


def test_the_index_spec_loads_a_value_null_in_the_first_samples(tmp_path):
    """Inference from 5 samples fails on a json value set only later; the spec from the index does not."""
    import datasets

    out = open_location(str(tmp_path / "ds"))
    with ShardedWriter(out, SequentialAllocator()) as writer:
        for n in range(8):  # a track's voice start_s: null while silent, then set
            meta = {"kind": "video_face", "audio": {"start_s": None if n < 6 else 1.5}, "tags": [] if n < 6 else ["a"]}
            writer.write({"__key__": f"t{n}", "__input__": f"t{n}", "__input_rows__": 1, "__split__": "all",
                          "json": meta, "voice": b""})
    shards = out.path("shards")
    with pytest.raises(datasets.exceptions.DatasetGenerationError):
        datasets.load_dataset("webdataset", data_dir=shards, cache_dir=str(tmp_path / "c1"))
    ds = datasets.load_dataset("webdataset", data_dir=shards, cache_dir=str(tmp_path / "c2"), features=features(out))
    metas = [r["json"] for r in ds["train"]]
    assert [m["audio"]["start_s"] for m in metas] == [None] * 6 + [1.5, 1.5] and metas[-1]["tags"] == ["a"]

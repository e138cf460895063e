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

from factory.members import unpack_faces
from factory.shards import committed_shard_paths, committed_shard_urls, iter_samples
from factory.storage import Location, open_location

pytestmark = pytest.mark.slow
KINDS = ("download", "frames", "video", "characters", "render", "faces")


@pytest.fixture(scope="module")
def made(tmp_path_factory, ray_local, talking_3d, silent_video) -> dict[str, Location]:
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
    run_video(videos, str(root / "video"), VideoConfig(style_filter="any", workers=(1, 1)))
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
        assert truth, kind
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

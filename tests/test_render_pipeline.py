"""factory annotate / factory render end to end: real bpy in child processes, real local Ray."""

from __future__ import annotations

import collections
import argparse
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.resume_helpers import committed_keys, kill_half_way
from PIL import Image

pytest.importorskip("bpy")

from actors.blender import BlenderProcess, WorkerError, WorkerSettings  # noqa: E402
from factory.dataset import read_errors  # noqa: E402
from actors.blender import local_model  # noqa: E402
from factory.pipelines.render import (  # noqa: E402
    ANNOTATIONS_FILE,
    add_annotate_arguments,
    add_render_arguments,
    find_models,
    model_id,
    read_annotations,
    run_annotate,
    run_annotate_from_args,
    run_render,
    run_render_from_args,
)
from factory.render.morphs import POSE_SIZE, TARGETS  # noqa: E402
from factory.render.sampling import STYLES, split_of  # noqa: E402
from factory.shards import committed_stats, iter_samples  # noqa: E402
from factory.storage import open_location  # noqa: E402
from factory.synthetic.character import build_character, write_character  # noqa: E402
from tests.render_job import IMAGES, SMALL  # noqa: E402
from tests.render_models import ERROR_INPUTS, WARNING_INPUTS, write_bad, write_good  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CONTRACT = {"kind", "model_id", "model_name", "split", "partition", "style", "pose", "morphs", "light_intensity",
            "face_bbox", "engine", "samples", "seed", "warnings"}


def test_annotate_maps_every_morph_and_flags_the_dead_one(tmp_path):
    character = build_character(dead_morph=True)
    write_character(character, tmp_path / "models" / "dead")
    (tmp_path / "models" / "broken").mkdir()
    (tmp_path / "models" / "broken" / "broken.pmx").write_bytes(b"PMX \x00")
    table = run_annotate(str(tmp_path / "models"), str(tmp_path / "out"))
    assert (tmp_path / "out" / ANNOTATIONS_FILE).exists()
    rows = [r for r in table.to_pylist() if r["model_file"] == "dead/character.pmx"]
    assert {r["morph_name"]: r["target"] for r in rows} == character.intended_targets
    flags = {r["morph_name"]: r["flag"] for r in rows if r["target"]}
    assert flags.pop("目閉じ") == "dead"
    assert set(flags.values()) == {"ok"}, flags
    broken = [r for r in table.to_pylist() if r["model_file"] == "broken/broken.pmx"]
    assert len(broken) == 1 and "PmxError" in broken[0]["error"]
    overrides = read_annotations(str(tmp_path / "out" / ANNOTATIONS_FILE))
    assert "eye_close" in overrides[model_id("dead/character.pmx")]
    assert model_id("broken/broken.pmx") not in overrides


def test_a_crashing_job_becomes_an_error_and_the_process_comes_back():
    process = BlenderProcess(WorkerSettings(recycle_every=2))
    try:
        with pytest.raises(WorkerError, match="died"):
            process.call("ctypes:string_at", 0)  # a segfault in the child
        first = process.call("os:getpid")
        assert process.call("os:getpid") == first
        assert process.call("os:getpid") != first  # recycled after 2 jobs
        assert process.processes_started == 3
    finally:
        process.stop()


def _samples(url: str) -> list[tuple[str, dict, np.ndarray]]:
    out = []
    for s in iter_samples(open_location(url)):
        out.append((s["__key__"], json.loads(s["json"]), np.asarray(Image.open(io.BytesIO(s["png"])))))
    return out


def test_render_pipeline_on_ray_writes_the_contract_and_survives_bad_inputs(tmp_path, ray_local):
    models = tmp_path / "models"
    write_good(models, 2)
    write_bad(models)
    # an edited annotation table: the first model may only use its mouth morphs
    first = model_id("good0/character.pmx")
    table = tmp_path / "annotations.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"model_id": first, "morph_index": 13, "target": "mouth_a", "use": True},
        {"model_id": first, "morph_index": 0, "target": "eye_close", "use": False},
    ]), table)
    url = str(tmp_path / "ds")
    result = run_render(str(models), url, SMALL, annotations=str(table))
    samples = _samples(url)
    by_model = collections.defaultdict(list)
    for key, meta, image in samples:
        assert CONTRACT <= set(meta), CONTRACT - set(meta)
        assert meta["kind"] == "render" and meta["engine"] == "workbench" and meta["style"] in STYLES
        assert key == f"{meta['model_id']}_{meta['image_index']:04d}" and "." not in key
        assert len(meta["pose"]) == POSE_SIZE and list(meta["morphs"]) == list(TARGETS)
        assert meta["split"] == split_of(meta["model_id"], SMALL.renderer.sampling)
        assert image.shape == (256, 256, 4) and image[:4, :4, 3].max() == 0
        x0, y0, x1, y1 = meta["face_bbox"]
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        by_model[meta["model_file"]].append(meta)
    assert sorted(by_model) == sorted(["good0/character.pmx", "good1/character.pmx",
                                       *(f"{n}/{n}.pmx" for n in WARNING_INPUTS)])
    assert all(len(v) == IMAGES for v in by_model.values())
    assert {t for m in by_model["good0/character.pmx"] for t in m["applied"]} <= {"mouth_a"}
    assert len({t for m in by_model["good1/character.pmx"] for t in m["applied"]}) > 1
    for name, warning in WARNING_INPUTS.items():
        assert any(warning in w for w in by_model[f"{name}/{name}.pmx"][0]["warnings"]), name
    errors = read_errors(open_location(url)).to_pylist()
    assert sorted(e["input_id"] for e in errors) == sorted(model_id(f"{n}/{n}.pmx") for n in ERROR_INPUTS)
    assert result.dataset["counts"]["samples"] == len(samples) == 4 * IMAGES


def test_render_killed_half_way_resumes_exactly(tmp_path, ray_local):
    models = tmp_path / "models"
    write_good(models, 5, seed=3)
    url = str(tmp_path / "ds")
    killed_at = kill_half_way(["tests.render_job", url, str(models)], url, at_least=2, timeout_s=240)
    out = open_location(url)
    assert 2 <= killed_at < 10, f"kill came at {killed_at} shards: not half-way"
    committed_before = {s.name for s in committed_stats(out)}
    result = run_render(str(models), url, SMALL)
    assert result.inputs_skipped >= 1
    keys = committed_keys(url)
    assert not [k for k, n in collections.Counter(keys).items() if n > 1]
    expected = {f"{model_id(f'good{i}/character.pmx')}_{j:04d}" for i in range(5) for j in range(IMAGES)}
    assert set(keys) == expected
    assert sorted(s["__key__"] for s in iter_samples(out)) == sorted(keys)
    assert committed_before <= {s.name for s in committed_stats(out)}  # committed shards were kept, not redone


def test_cli_annotate_then_render_with_the_table(tmp_path, ray_local, capsys):
    write_good(tmp_path / "models", 1, seed=5)

    def parse(add, argv):
        parser = argparse.ArgumentParser()
        add(parser)
        return parser.parse_args(argv)

    assert run_annotate_from_args(parse(add_annotate_arguments, [
        "--models", str(tmp_path / "models"), "--out", str(tmp_path / "ann")])) == 0
    table = str(tmp_path / "ann" / ANNOTATIONS_FILE)
    argv = ["--models", str(tmp_path / "models"), "--out", str(tmp_path / "ds"), "--images-per-model", "2",
            "--engine", "workbench", "--render-workers", "1:1", "--annotations", table]
    assert run_render_from_args(parse(add_render_arguments, argv)) == 0
    assert "rendered 2 images from 1 models" in capsys.readouterr().out
    used = read_annotations(table)[model_id("good0/character.pmx")]
    for _, meta, _ in _samples(str(tmp_path / "ds")):
        assert set(meta["targets"]) == set(used)


def test_models_are_found_and_fetched_from_s3(tmp_path, s3_env):
    import s3fs

    path = write_good(tmp_path / "models", 1)[0]
    fs = s3fs.S3FileSystem()
    fs.put(str(path.parent), f"{s3_env[5:]}/models/one", recursive=True)
    found = find_models(f"{s3_env}/models")
    assert [rel for _, rel in found] == ["one/character.pmx"]
    with local_model(found[0][0]) as local:
        assert Path(local).read_bytes() == path.read_bytes()
        assert (Path(local).parent / "tex" / "face.png").is_file()

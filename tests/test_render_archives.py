"""`factory render --models` over zip archives on S3: good archives (one with
Shift-JIS names) render, unsafe ones end as error rows with nothing written
outside the task's temp folder, and a rerun over committed inputs renders nothing."""

from __future__ import annotations

import json
import stat
import struct
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy")

from factory.dataset import read_errors
from factory.pipelines import runner
from factory.pipelines.render import model_inputs, run_render
from factory.shards import committed_stats, iter_samples
from factory.sources.archives import model_id
from factory.storage import open_location
from factory.synthetic.character import build_character, write_character
from tests.render_job import IMAGES, SMALL

pytestmark = pytest.mark.slow
SJIS_DIR = "初音ミク"


def _files(folder: Path) -> dict[str, bytes]:
    """A model folder as zip entries (posix names relative to it)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _shift_jis_zip(path: Path, model: dict[str, bytes]) -> Path:
    """The model under a Japanese folder name written as raw Shift-JIS bytes with no UTF-8 flag,
    as Japanese zip tools do (zipfile itself would write UTF-8, so an ASCII placeholder is swapped)."""
    raw = SJIS_DIR.encode("cp932")
    placeholder = b"Q" * len(raw) + b"/"
    _zip(path, {placeholder.decode() + n: d for n, d in model.items()})
    path.write_bytes(path.read_bytes().replace(placeholder, raw + b"/"))
    return path


def _claims_100_gb(path: Path, model: dict[str, bytes]) -> Path:
    """A model plus 25 small entries whose central directory claims 4 GiB each (100 GB in all)."""
    _zip(path, {**model, **{f"part{i}.bin": b"0" * 100 for i in range(25)}})
    data = bytearray(path.read_bytes())
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) != -1:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + name_len].startswith(b"part"):
            struct.pack_into("<I", data, pos + 24, 0xFFFFFFFE)
        pos += 4
    path.write_bytes(bytes(data))
    return path


def _with_symlink(path: Path, model: dict[str, bytes]) -> Path:
    _zip(path, model)
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("model/tex/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc")
    return path


@pytest.fixture
def archives(tmp_path) -> tuple[Path, dict[str, str]]:
    """A models folder of archives; bad archive name -> the file it tries to write outside."""
    model = _files(write_character(build_character(), tmp_path / "src").parent)
    folder = tmp_path / "models"
    folder.mkdir()
    tag = uuid.uuid4().hex[:8]
    outside = {"dotdot": f"{tempfile.gettempdir()}/evil_{tag}_dotdot.txt", "absolute": f"/tmp/evil_{tag}_abs.txt"}
    _zip(folder / "good.zip", {f"Miku/{n}": d for n, d in model.items()})
    _shift_jis_zip(folder / "sjis.zip", model)
    _zip(folder / "dotdot.zip", {**model, f"../../evil_{tag}_dotdot.txt": b"x"})
    _zip(folder / "absolute.zip", {**model, outside["absolute"]: b"x"})
    _with_symlink(folder / "symlink.zip", model)
    _zip(folder / "many.zip", {**model, **{f"f/{i}.txt": b"" for i in range(10_000)}})
    _claims_100_gb(folder / "huge.zip", model)
    return folder, outside


def test_render_from_zip_archives_on_s3(archives, s3_env, ray_local, tmp_path, monkeypatch):
    folder, outside = archives
    models = f"{s3_env}/models"
    open_location(models).fs.put(str(folder) + "/", open_location(models).root + "/", recursive=True)
    items = {i.meta["model_file"]: i for i in model_inputs(models, SMALL.renderer.sampling)}
    assert f"sjis.zip/{SJIS_DIR}/character.pmx" in items  # the Shift-JIS name decoded from the listing
    assert items["good.zip/Miku/character.pmx"].input_id == model_id("good.zip", "Miku/character.pmx")
    leftovers = set(Path(tempfile.gettempdir()).glob("factory-archive-*"))

    out = f"{s3_env}/renders"
    result = run_render(models, out, SMALL)
    samples = list(iter_samples(open_location(out)))
    rendered = {json.loads(s["json"])["model_file"] for s in samples}
    assert rendered == {"good.zip/Miku/character.pmx", f"sjis.zip/{SJIS_DIR}/character.pmx"}
    assert len(samples) == 2 * IMAGES and all(s["png"][:4] == b"\x89PNG" for s in samples)
    errors = {r["input_id"]: r["error"] for r in read_errors(open_location(out)).to_pylist()}
    expected = {"dotdot": "escapes", "absolute": "absolute", "symlink": "symlink", "many": "entries", "huge": "claim"}
    for name, word in expected.items():
        message = errors.pop(model_id(f"{name}.zip", "character.pmx"))
        assert f"{name}.zip" in message and word in message, message
    assert not errors
    assert not any(Path(p).exists() for p in outside.values())  # nothing written outside the temp folder
    assert set(Path(tempfile.gettempdir()).glob("factory-archive-*")) <= leftovers  # temp folders removed
    assert result.dataset["counts"]["errors"] == 5

    # A rerun over committed inputs never starts Ray, so no archive is fetched and nothing renders.
    shards = committed_stats(open_location(out))

    def no_stage(*args, **kwargs):
        raise AssertionError("the render stage started on a rerun")

    monkeypatch.setattr(runner, "init_ray", no_stage)
    again = run_render(models, out, SMALL, resume=True)
    assert again.inputs_skipped == again.inputs_total == 7
    assert committed_stats(open_location(out)) == shards

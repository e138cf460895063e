"""No field of an input picks where the factory writes: hostile shards, manifest
entries and yt-dlp metadata each write inside the run's work folder only."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from factory.sources.entries import SourceEntry, safe_id
from factory.sources.manifest import expand_inputs
from factory.sources.video_shards import expand_shards
from factory.sources.youtube import download
from factory.sources.ytdl import SourceError
from tests.test_youtube_source import FAST, site, videos  # noqa: F401  (fixtures)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _hostile_shard(path: Path, outside: Path, video: bytes) -> None:
    """Samples whose json id is absolute or climbs out, and members named with '/' and '..'."""
    with tarfile.open(path, "w") as tar:
        for key, meta in (("abs", {"id": str(outside / "abs_escape")}), ("up", {"id": "../../up_escape"})):
            _add(tar, f"{key}.mp4", video)
            _add(tar, f"{key}.json", json.dumps(meta).encode())
        _add(tar, "../climb.mp4", video)  # a member name that climbs
        _add(tar, "deep/er/nested.mp4", video)  # a member name with folders


def test_hostile_shard_writes_only_inside_the_work_folder(tmp_path, videos):  # noqa: F811
    video = videos["a.mp4"].read_bytes()
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "run" / "work"
    work.mkdir(parents=True)
    shard = tmp_path / "hostile.tar"
    _hostile_shard(shard, outside, video)
    before = _files(tmp_path)
    entries = expand_shards(str(shard))
    assert len(entries) == 4 and all(e.ok for e in entries)
    assert all(safe_id(e.video_id) == e.video_id for e in entries), [e.video_id for e in entries]
    paths = [download(e, FAST, work) for e in entries]
    assert {p.parent for p in paths} == {work}
    assert all(p.read_bytes() == video for p in paths)
    # Nothing appeared anywhere but in the work folder (not at the absolute id, not two levels up).
    assert _files(tmp_path) - before == {str(p.relative_to(tmp_path)) for p in paths}
    assert not list(outside.iterdir()) and not (tmp_path / "up_escape.mp4").exists()


@pytest.mark.parametrize("kind", ["s3", "web"])
def test_hostile_manifest_entry_is_refused_and_writes_nothing(kind, tmp_path, site):  # noqa: F811
    work = tmp_path / "run" / "work"
    entry = SourceEntry(video_id="../../escape", url=site.url("a.mp4") if kind == "web" else "s3://bucket/a.mp4", kind=kind)
    before = _files(tmp_path)
    with pytest.raises(SourceError, match="not safe as a file name"):
        download(entry, FAST, work)
    assert _files(tmp_path) == before


def test_hostile_ytdlp_info_gets_a_safe_id_and_stays_in_workdir(tmp_path, site, monkeypatch):  # noqa: F811
    """yt-dlp metadata (a page's info json) with a YouTube id that is a path: sanitised, then downloaded."""
    import factory.sources.manifest as manifest

    info = {"id": "../../../tmp/yt_escape", "extractor_key": "Youtube", "webpage_url": site.url("a.mp4"), "title": "x"}
    monkeypatch.setattr(manifest, "_extract", lambda url, settings: dict(info))
    (entry,) = expand_inputs("https://www.youtube.com/watch?v=hostile")
    assert entry.video_id == safe_id(entry.video_id) and "/" not in entry.video_id and ".." not in entry.video_id
    work = tmp_path / "work"
    before = _files(tmp_path)
    path = download(entry, FAST, work)
    assert path.parent == work and path.name.startswith(entry.video_id)
    assert {Path(p).parent for p in _files(tmp_path) - before} == {Path("work")}
    assert not os.path.exists("/tmp/yt_escape.mp4")


def test_safe_id_keeps_plain_ids_and_hashes_the_rest():
    assert safe_id("dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    for raw in ("/etc/passwd", "../x", "a.b", "-lead", "x\n", "é"):
        made = safe_id(raw)
        assert made != raw and safe_id(made) == made
    assert safe_id("../x") != safe_id("./x")  # distinct inputs stay distinct

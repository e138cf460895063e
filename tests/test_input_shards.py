"""Video shards as inputs: `factory download` from a local HTTP server into S3
shards, `factory video` from those shards (same samples as the one-step run),
video2dataset's layout read member by member, reruns that fetch nothing."""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from factory.cli import main as factory_main
from factory.dataset import read_errors
from factory.shards import iter_samples
from factory.sources import video_shards
from factory.sources.manifest import expand_inputs
from factory.sources.youtube import download
from factory.storage import open_location
from tests.test_youtube_source import FAST, Site, _handler

pytestmark = pytest.mark.slow
SOURCE_FIELDS = ("source_shard", "source_key", "caption")  # what only a shard input can give


@pytest.fixture(scope="module")
def site(talking_3d):
    """A web server with one video and one page that is not a video, counting requests."""
    site = Site(files={"talk.mp4": talking_3d.path.read_bytes(), "page.html": b"<html><p>no video</p></html>"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()


def _cli(*args: str) -> None:
    assert factory_main(list(args)) == 0


def _samples(url: str) -> dict[str, dict]:
    return {s["__key__"]: s for s in iter_samples(open_location(url))}


def test_download_then_video_from_s3_shards_matches_one_step(site, s3_env, ray_local, tmp_path, capsys):
    from factory.pipelines.video import VideoConfig, run_video

    inputs = tmp_path / "inputs.txt"
    inputs.write_text(f"{site.url('talk.mp4')}\n{site.url('page.html')}\n")
    dl = f"{s3_env}/raw"
    _cli("download", "--input", str(inputs), "--out", dl, "--sleep", "0", "--workers", "1:1")

    # One sample per video: the bytes as served, the json a reader needs; the page is an error row.
    (key, sample), = _samples(dl).items()
    meta = json.loads(sample["json"])
    assert sample["mp4"] == site.files["talk.mp4"] and sample["txt"] == meta["title"].encode()
    assert meta["id"] == key and meta["url"] == site.url("talk.mp4") and meta["ext"] == "mp4"
    assert meta["duration"] == pytest.approx(12.0, abs=0.1) and (meta["width"], meta["height"]) == (320, 240)
    assert meta["source"]["kind"] == "web" and meta["format"]["extractor_key"] == "Generic"
    assert len(read_errors(open_location(dl))) == 1

    # A rerun fetches nothing: the media GETs it makes are exactly those of listing the inputs.
    before = site.requests["talk.mp4"]
    expand_inputs(str(inputs), FAST)
    listing = site.requests["talk.mp4"] - before
    capsys.readouterr()
    _cli("download", "--input", str(inputs), "--out", dl, "--sleep", "0")
    assert "2 videos (2 already done)" in capsys.readouterr().out
    assert site.requests["talk.mp4"] - before == 2 * listing

    # Two-step (shards on S3) against one-step (HTTP): same keys, same json but the source fields
    # (the shard's txt, the video's title, becomes the caption).
    config = VideoConfig(style_filter="any", workers=(1, 1), download=FAST)
    run_video(site.url("talk.mp4"), f"{s3_env}/one", config)
    _cli("video", "--input", f"{dl}/", "--out", f"{s3_env}/two", "--style", "any", "--workers", "1:1")
    one, two = _samples(f"{s3_env}/one"), _samples(f"{s3_env}/two")
    assert sorted(two) == sorted(one) and len(one) == 2
    for k in one:
        a, b = json.loads(one[k]["json"]), json.loads(two[k]["json"])
        assert b["source_shard"] == f"{dl}/shards/all-000000.tar" and b["source_key"] == key
        assert b["caption"] == meta["title"] and all(a[f] is None for f in SOURCE_FIELDS)
        assert {f: v for f, v in b.items() if f not in SOURCE_FIELDS} == {f: v for f, v in a.items() if f not in SOURCE_FIELDS}
        assert two[k]["jpg"] == one[k]["jpg"]


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def v2d_shards(silent_video, tmp_path) -> Path:
    """A folder in video2dataset's layout: 00000.tar (a real video, then 4 MB that is no video), its parquet and stats."""
    folder = tmp_path / "v2d"
    folder.mkdir()
    meta = {"url": "https://example.org/quiet.mp4", "key": "000000000", "status": "success", "error_message": None}
    _tar(folder / "00000.tar", {
        "000000000.mp4": silent_video.path.read_bytes(),
        "000000000.json": json.dumps(meta).encode(),
        "000000000.txt": b"a quiet video",
        "000000001.mp4": bytes(4 << 20),
        "000000001.json": json.dumps({**meta, "key": "000000001", "url": "https://example.org/junk.mp4"}).encode(),
        "000000001.txt": b"",
        # video2dataset's record of a failed download: json + txt, no video
        "000000002.json": json.dumps({**meta, "key": "000000002", "url": "https://example.org/gone.mp4",
                                      "status": "failed_to_download", "error_message": "HTTP Error 404: Not Found"}).encode(),
        "000000002.txt": b"a video that is gone",
    })  # fmt: skip
    (folder / "00000.parquet").write_bytes(b"PAR1")  # beside the shard, as video2dataset writes it: ignored
    (folder / "00000_stats.json").write_text("{}")
    return folder


class _CountingReads:
    """Counts the bytes read through video_shards' shard handles (the real files underneath)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        real = video_shards._open

        def counted(url: str):
            fh = real(url)
            read = fh.read

            def read_counted(size: int = -1) -> bytes:
                data = read(size)
                self.bytes += len(data)
                return data

            fh.read = read_counted
            return fh

        monkeypatch.setattr(video_shards, "_open", counted)


def test_video2dataset_layout_read_by_member(v2d_shards, silent_video, tmp_path, monkeypatch):
    reads = _CountingReads(monkeypatch)
    entries = expand_inputs(str(v2d_shards))
    assert [e.source_key for e in entries] == ["000000000", "000000001", "000000002"]
    assert [e.caption for e in entries] == ["a quiet video", None, "a video that is gone"]
    failed = entries[2]  # no video member: an error entry with its URL and status, not dropped
    assert failed.error and "https://example.org/gone.mp4" in failed.error and "failed_to_download: HTTP Error 404" in failed.error
    assert failed.webpage_url == "https://example.org/gone.mp4" and entries[0].error is None and entries[1].error is None
    assert reads.bytes < 256 << 10  # headers and jsons only, not the 4 MB member
    assert [e.video_id for e in entries] == [e.video_id for e in expand_inputs(str(v2d_shards))]  # stable ids
    assert entries[0].webpage_url == "https://example.org/quiet.mp4" and entries[0].kind == "shard"

    reads.bytes = 0
    path = download(entries[0], None, tmp_path / "work")
    assert path.read_bytes() == silent_video.path.read_bytes()
    assert reads.bytes == entries[0].member_size  # that member's range, nothing else of the shard

    # A brace pattern over two shards, one of them missing: the missing one is one error entry.
    pattern = expand_inputs(str(v2d_shards / "{00000..00001}.tar"))
    assert [e.source_key for e in pattern[:2]] == ["000000000", "000000001"]
    assert len(pattern) == 4 and "no such shard" in pattern[3].error


def test_video_pipeline_on_video2dataset_shards(v2d_shards, ray_local, tmp_path):
    from factory.pipelines.video import VideoConfig, run_video

    out = str(tmp_path / "ds")
    run_video(str(v2d_shards / "00000.tar"), out, VideoConfig(style_filter="any", workers=(1, 1)))
    samples = list(iter_samples(open_location(out)))
    assert samples, "the real video gave no face track"
    for sample in samples:
        meta = json.loads(sample["json"])
        assert meta["source_shard"] == str(v2d_shards / "00000.tar") and meta["source_key"] == "000000000"
        assert meta["source_url"] == "https://example.org/quiet.mp4" and meta["caption"] == "a quiet video"
    # the 4 MB of zeros and video2dataset's failed download: one error row each, 3 inputs in all
    junk, gone = sorted(read_errors(open_location(out)).to_pylist(), key=lambda r: r["input_id"])
    assert junk["input_id"].startswith("000000001_") and gone["input_id"].startswith("000000002_")
    assert "https://example.org/gone.mp4" in gone["error"] and "failed_to_download" in gone["error"]
    assert json.loads(open_location(out).read_bytes("dataset.json"))["counts"]["inputs"] == 3

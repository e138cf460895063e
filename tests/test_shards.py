"""Shard writer and reader: round trips, resume after SIGKILL, bad OUT folders."""

from __future__ import annotations

import collections
import os
import sys
import tarfile
from pathlib import Path

import pytest

from factory.dataset import DatasetError, prepare, read_errors
from factory.shards import (
    SequentialAllocator,
    ShardedWriter,
    ShardFormatError,
    ShardLimits,
    committed_shard_paths,
    committed_shard_urls,
    committed_stats,
    iter_samples,
    make_key,
)
from factory.storage import open_location
from tests.resume_helpers import committed_keys, kill_half_way
from tests.resume_writer import ROWS_PER_INPUT, main as write_dataset

REPO = Path(__file__).resolve().parents[1]
N_INPUTS = 20


def test_keys_are_deterministic_and_dot_free():
    assert make_key("my.video.mp4", 3) == make_key("my.video.mp4", 3) == "my_video_mp4_3"
    with pytest.raises(ShardFormatError):
        make_key("...")


def test_writer_rejects_bad_rows(tmp_path):
    out = open_location(str(tmp_path))
    with ShardedWriter(out, SequentialAllocator()) as w:
        with pytest.raises(ShardFormatError, match="no dots"):
            w.write({"__key__": "a.b", "__input__": "a", "__input_rows__": 1, "__split__": "all"})
        with pytest.raises(ShardFormatError, match="split"):
            w.write({"__key__": "ab", "__input__": "a", "__input_rows__": 1, "__split__": "val"})


def test_rotation_by_count_and_bytes(tmp_path):
    out = open_location(str(tmp_path))
    rows = [
        {"__key__": f"k{i}", "__input__": f"i{i}", "__input_rows__": 1, "__split__": "all", "bin": b"x" * 3000}
        for i in range(10)
    ]
    with ShardedWriter(out, SequentialAllocator(), ShardLimits(max_samples=4)) as w:
        w.write_all(rows)
    assert [s.samples for s in committed_stats(out)] == [4, 4, 2]
    out2 = open_location(str(tmp_path / "b"))
    with ShardedWriter(out2, SequentialAllocator(), ShardLimits(max_samples=100, max_bytes=7000)) as w:
        w.write_all(rows)
    stats = committed_stats(out2)
    assert sum(s.samples for s in stats) == 10 and len(stats) >= 3
    assert all(s.bytes < 7000 + 3000 + 2048 for s in stats)  # at most one sample past the limit


def test_same_samples_give_identical_shard_bytes(tmp_path):
    for name in ("a", "b"):
        write_dataset(str(tmp_path / name), 6, 0.0)
    for shard in sorted(os.listdir(tmp_path / "a" / "shards")):
        assert (tmp_path / "a/shards" / shard).read_bytes() == (tmp_path / "b/shards" / shard).read_bytes()


def _check_round_trip(url: str) -> None:
    import webdataset as wds

    write_dataset(url, N_INPUTS, 0.0)
    out = open_location(url)
    ours = {s["__key__"]: s for s in iter_samples(out)}
    assert len(ours) == (N_INPUTS - 1) * ROWS_PER_INPUT  # one input is an error row
    urls = committed_shard_urls(out)
    # upstream webdataset reads the shards as they are (s3 through fsspec's pipe:)
    if url.startswith("s3://"):
        urls = [f"pipe:{sys.executable} -c 'import fsspec,sys; sys.stdout.buffer.write(fsspec.open(\"{u}\").open().read())'" for u in urls]
    theirs = {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False)}
    assert theirs.keys() == ours.keys()
    some = next(iter(ours))
    assert theirs[some]["jpg"] == ours[some]["jpg"]
    errors = read_errors(out)
    assert errors.column("input_id").to_pylist() == ["vid007"]
    assert "corrupt video" in errors.column("error")[0].as_py()


def test_round_trip_local_with_webdataset(tmp_path):
    _check_round_trip(str(tmp_path / "ds"))


def test_round_trip_s3_with_webdataset(s3_env):
    _check_round_trip(f"{s3_env}/ds")


@pytest.mark.slow
def test_round_trip_with_ray_read_webdataset(tmp_path, s3_env, ray_local):
    import ray

    for url in (str(tmp_path / "ds"), f"{s3_env}/ds"):
        write_dataset(url, N_INPUTS, 0.0)
        out = open_location(url)
        rows = ray.data.read_webdataset(committed_shard_paths(out), filesystem=out.arrow_filesystem()).take_all()
        assert sorted(r["__key__"] for r in rows) == sorted(committed_keys(url))


def _check_resume(url: str, reference_url: str, tmp_path: Path) -> None:
    n = kill_half_way(["tests.resume_writer", url, str(N_INPUTS), "0.15"], url, at_least=3, timeout_s=120)
    assert 3 <= n < 15, f"kill came at {n} shards: not half-way"
    write_dataset(url, N_INPUTS, 0.0)  # the rerun
    write_dataset(reference_url, N_INPUTS, 0.0)  # an uninterrupted run
    keys = committed_keys(url)
    dupes = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert not dupes
    assert sorted(keys) == sorted(committed_keys(reference_url))
    # the tars hold exactly the indexed samples: nothing lost, nothing twice
    assert sorted(s["__key__"] for s in iter_samples(open_location(url))) == sorted(keys)


def test_resume_after_sigkill_local(tmp_path):
    _check_resume(str(tmp_path / "ds"), str(tmp_path / "ref"), tmp_path)


def test_resume_after_sigkill_s3(tmp_path, s3_env):
    _check_resume(f"{s3_env}/ds", f"{s3_env}/ref", tmp_path)


def test_corrupt_uncommitted_shard_is_ignored_then_replaced(tmp_path):
    url = str(tmp_path / "ds")
    write_dataset(url, 6, 0.0)
    before = {s["__key__"]: s["jpg"] for s in iter_samples(open_location(url))}
    committed_tars = {p.name: p.read_bytes() for p in (tmp_path / "ds/shards").iterdir()}
    (tmp_path / "ds/shards/all-000099.tar").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "ds/index/all-000099.parquet").write_bytes(b"not parquet")
    assert {s["__key__"] for s in iter_samples(open_location(url))} == before.keys()  # reader skips it
    with prepare(open_location(url), "test", {"n": 6}) as state:
        assert sorted(state.removed_leftovers) == ["index/all-000099.parquet", "shards/all-000099.tar"]
    for name, data in committed_tars.items():  # nothing committed is touched
        assert (tmp_path / "ds/shards" / name).read_bytes() == data
    assert {s["__key__"]: s["jpg"] for s in iter_samples(open_location(url))} == before


def test_out_holding_foreign_files_is_refused(tmp_path):
    (tmp_path / "thesis.pdf").write_bytes(b"%PDF")
    with pytest.raises(DatasetError, match=r"holds files that are not part of a factory dataset \(thesis.pdf\)"):
        prepare(open_location(str(tmp_path)), "test", {})
    assert (tmp_path / "thesis.pdf").read_bytes() == b"%PDF"


def test_out_holding_another_pipelines_dataset_is_refused(tmp_path):
    url = str(tmp_path / "ds")
    write_dataset(url, 3, 0.0)
    before = sorted(os.listdir(tmp_path / "ds" / "shards"))
    with pytest.raises(DatasetError, match="holds a 'test' dataset; a 'render' run needs its own output folder"):
        prepare(open_location(url), "render", {})
    with pytest.raises(DatasetError, match="pass --resume"):
        prepare(open_location(url), "test", {}, resume=False)
    assert sorted(os.listdir(tmp_path / "ds" / "shards")) == before


def test_shard_members_have_fixed_metadata(tmp_path):
    write_dataset(str(tmp_path / "ds"), 2, 0.0)
    with tarfile.open(tmp_path / "ds/shards/train-000000.tar") as tar:
        for m in tar.getmembers():
            assert (m.mtime, m.uid, m.gid, m.mode) == (946684800, 0, 0, 0o644)
            assert m.name.count(".") == 1

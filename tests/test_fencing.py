"""Fenced commits: a zombie writer of a dead run, two runs on one OUT, a takeover,
and resume failures that are one line each. Real processes, local disk and moto S3."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factory.dataset import DatasetError, finalize, prepare
from factory.epochs import OutInUse, current_epoch, sweep
from factory.shards import (
    INDEX_DIR,
    SHARD_DIR,
    STATS_DIR,
    committed_stats,
    iter_samples,
    read_markers,
    shard_name,
)
from factory.storage import open_location
from tests.resume_helpers import REPO, committed_keys
from tests.resume_writer import LIMITS, write_inputs
from tests.resume_writer import main as write_dataset

N_INPUTS = 12


def _url(where: str, tmp_path: Path, request, name: str) -> str:
    return str(tmp_path / name) if where == "local" else f"{request.getfixturevalue('s3_env')}/{name}"


def _py(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"writer ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "writer never reached the hold point"
        time.sleep(0.02)


def _assert_whole(url: str, reference: str) -> None:
    """Exact key set of an uninterrupted run, no duplicate, every marker with its tar and index."""
    out = open_location(url)
    keys = committed_keys(url)
    assert not [k for k, n in collections.Counter(keys).items() if n > 1]
    assert sorted(keys) == sorted(committed_keys(reference))
    assert sorted(s["__key__"] for s in iter_samples(out)) == sorted(keys)
    tars, indexes = set(out.list(SHARD_DIR)), set(out.list(INDEX_DIR))
    for st in committed_stats(out):
        assert st.name in tars and shard_name(st.split, st.shard, "parquet") in indexes


def _write_all_and_finalize(out, state) -> None:
    """What the new run does once it owns OUT: write every input it lacks, sweep void shards, finalize."""
    with state.writer(out, LIMITS) as writer:
        write_inputs(writer, state.complete_inputs, N_INPUTS, 0.0)
    sweep(out, read_markers(out)[1])
    finalize(out, "test", {"n": N_INPUTS})


@pytest.mark.parametrize("where", ["local", "s3"])
def test_zombie_writer_held_before_its_commit_is_fenced_out(where, tmp_path, request):
    url, ref = _url(where, tmp_path, request, "ds"), _url(where, tmp_path, request, "ref")
    claim = _py("tests.zombie_writer", "claim", url)
    old_epoch = int(claim.communicate(timeout=120)[0])
    held, release = tmp_path / "held", tmp_path / "release"
    zombie = _py("tests.zombie_writer", "write", url, str(old_epoch), str(held), str(release), str(N_INPUTS))
    _wait_for(held, zombie)  # its index is written, its marker not yet
    out = open_location(url)
    assert len(out.list(INDEX_DIR)) == 1 and not committed_stats(out)
    with prepare(out, "test", {"n": N_INPUTS}) as state:  # the new run; the old driver is dead
        assert state.epoch == old_epoch + 1 and not state.committed_keys
        release.touch()
        _, err = zombie.communicate(timeout=120)
        assert zombie.returncode == 3, err
        assert err.strip().count("\n") == 0 and "voided by a newer run" in err
        _write_all_and_finalize(out, state)
    write_dataset(ref, N_INPUTS, 0.0)
    _assert_whole(url, ref)
    # The zombie's shard numbers are void: no file of theirs is left under any folder.
    void = read_markers(out)[1]
    assert void and all(shard_name(s, n, "tar") not in out.list(SHARD_DIR) for s, n in void)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_second_run_on_a_live_out_is_refused_in_one_line(where, tmp_path, request):
    url, ref = _url(where, tmp_path, request, "ds"), _url(where, tmp_path, request, "ref")
    first = _py("tests.resume_writer", url, str(N_INPUTS), "0.3")
    out = open_location(url)
    deadline = time.monotonic() + 120
    while not committed_stats(out) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first run owns OUT and is writing
    second = _py("tests.resume_writer", url, str(N_INPUTS), "0.0")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1
    line = err.strip()
    assert "\n" not in line and "is owned by a live run (epoch 1" in line and "pid" in line
    assert "--resume" in line and "--force-takeover" in line
    first.communicate(timeout=180)
    assert first.returncode == 0
    write_dataset(ref, N_INPUTS, 0.0)
    _assert_whole(url, ref)


def test_two_runs_started_at_once_neither_lose_nor_double(tmp_path):
    url, ref = str(tmp_path / "ds"), str(tmp_path / "ref")
    runs = [_py("tests.resume_writer", url, str(N_INPUTS), "0.05") for _ in range(2)]
    results = [(p.wait(timeout=180), p.communicate()[1].strip()) for p in runs]
    refused = [err for rc, err in results if rc == 1]
    # The documented outcome: one run owns OUT, the other is refused in one line (or,
    # when it came after the first had ended, it found everything complete).
    assert [rc for rc, _ in results].count(0) >= 1 and len(refused) <= 1
    assert all("\n" not in e and ("live run" in e or "at the same moment" in e) for e in refused)
    write_dataset(url, N_INPUTS, 0.0)  # the refused one, rerun, has nothing left to do
    write_dataset(ref, N_INPUTS, 0.0)
    _assert_whole(url, ref)


def test_force_takeover_fences_the_live_owner_out(tmp_path):
    url, ref = str(tmp_path / "ds"), str(tmp_path / "ref")
    first = _py("tests.resume_writer", url, str(N_INPUTS), "0.3")
    out = open_location(url)
    while not committed_stats(out):
        assert first.poll() is None
        time.sleep(0.05)
    with pytest.raises(OutInUse, match="live run"):
        prepare(out, "test", {"n": N_INPUTS})
    with prepare(out, "test", {"n": N_INPUTS}, takeover=True) as state:
        assert current_epoch(out) == state.epoch == 2
        _, err = first.communicate(timeout=180)
        assert first.returncode == 1 and "epoch 1" in err and "\n" not in err.strip()
        _write_all_and_finalize(out, state)
    write_dataset(ref, N_INPUTS, 0.0)
    _assert_whole(url, ref)


def _damage(tmp_path: Path, how: str) -> str:
    url = str(tmp_path / "ds")
    write_dataset(url, 6, 0.0)
    stats = sorted((tmp_path / "ds" / STATS_DIR).glob("*.json"))[0]
    index = tmp_path / "ds" / INDEX_DIR / stats.name.replace(".json", ".parquet")
    if how == "no index":
        index.unlink()
    elif how == "bad index":
        index.write_bytes(b"not parquet")
    else:
        stats.write_text(json.dumps(json.loads(stats.read_text()) | {"epoch": 99}))
    return url


@pytest.mark.parametrize(
    "how, message",
    [
        ("no index", r"commits a shard whose index/\S+ is missing; delete that marker"),
        ("bad index", r"index/\S+ is unreadable"),
        ("foreign epoch", r"committed by epoch 99, which this OUT never recorded"),
    ],
)
def test_a_damaged_dataset_fails_resume_in_one_line(tmp_path, how, message):
    url = _damage(tmp_path, how)
    with pytest.raises(DatasetError, match=message) as caught:
        prepare(open_location(url), "test", {"n": 6})
    assert "\n" not in str(caught.value)
    # The same failure from a whole run (its claim of the first try was released): one line, exit 1.
    proc = _py("tests.resume_writer", url, "6", "0.0")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err.strip().count("\n") == 0 and re.search(message, err)

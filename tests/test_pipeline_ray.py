"""The frame-sampling pipeline on a real local Ray: local disk, S3 (moto), resume."""

from __future__ import annotations

import collections
import json
import os
import shutil
from pathlib import Path

import pytest

from factory.dataset import read_errors
from factory.sources.manifest import file_id as video_id
from factory.shards import committed_stats, iter_samples
from factory.storage import open_location
from tests.frames_job import SMALL
from tests.resume_helpers import committed_keys, kill_half_way

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """A 3D-style and a 2D-style synthetic video, a corrupt one and 10 copies for volume."""
    import numpy as np

    from factory.synthetic.video import VideoSpec, make_video, write_corrupt_file

    folder = tmp_path_factory.mktemp("videos")
    made = {s: make_video(folder / f"{s}.mp4", VideoSpec(style=s)).path for s in ("3d", "2d")}
    made["corrupt"] = write_corrupt_file(folder / "corrupt.mp4", made["3d"], "payload", np.random.default_rng(0))
    for i in range(10):
        shutil.copy(made["3d"], folder / f"copy{i}.mp4")
    made["copies"] = [folder / f"copy{i}.mp4" for i in range(10)]
    return made


@pytest.fixture(scope="module")
def uninterrupted_keys(videos, tmp_path_factory, ray_local) -> list[str]:
    """Committed keys of one uninterrupted run over the kill loops' ten videos (keys do not
    depend on where the dataset lives, so the local and S3 loops compare with the same run)."""
    from factory.pipelines.frames import run_frames

    url = str(tmp_path_factory.mktemp("uninterrupted") / "ds")
    run_frames([str(p) for p in videos["copies"]], url, SMALL)
    return sorted(committed_keys(url))


@pytest.mark.parametrize("where", ["local", "s3"])
def test_frames_pipeline_writes_committed_shards_and_error_rows(where, videos, tmp_path, ray_local, request):
    from factory.pipelines.frames import run_frames

    url = str(tmp_path / "ds") if where == "local" else f"{request.getfixturevalue('s3_env')}/ds"
    inputs = [str(videos["3d"]), str(videos["2d"]), str(videos["corrupt"])]
    result = run_frames(inputs, url, SMALL)
    out = open_location(url)
    samples = list(iter_samples(out))
    by_video = collections.defaultdict(list)
    for s in samples:
        meta = json.loads(s["json"])
        by_video[meta["video_id"]].append(meta)
    # 12 s at one frame per 0.5 s
    assert sorted(len(v) for v in by_video.values()) == [24, 24]
    styles = {vid: {m["style"] for m in metas} for vid, metas in by_video.items()}
    assert styles == {video_id(inputs[0]): {"3d"}, video_id(inputs[1]): {"2d"}}
    times = sorted(m["time_s"] for m in by_video[video_id(inputs[0])])
    assert all(abs(b - a - 0.5) < 0.05 for a, b in zip(times, times[1:]))
    errors = read_errors(out)
    assert errors.column("input_id").to_pylist() == [video_id(inputs[2])]
    assert result.dataset["counts"]["samples"] == 48
    assert all(st.samples + st.errors <= 5 for st in committed_stats(out))


def test_rerun_over_complete_inputs_does_nothing(videos, tmp_path, ray_local):
    from factory.pipelines.frames import run_frames

    url = str(tmp_path / "ds")
    run_frames([str(videos["3d"])], url, SMALL)
    before = sorted(os.listdir(tmp_path / "ds" / "shards"))
    again = run_frames([str(videos["3d"])], url, SMALL)
    assert again.inputs_skipped == 1
    assert sorted(os.listdir(tmp_path / "ds" / "shards")) == before


def test_ray_run_killed_half_way_resumes_exactly(videos, tmp_path, ray_local):
    from factory.pipelines.frames import run_frames

    inputs = [str(p) for p in videos["copies"]]
    url, ref = str(tmp_path / "ds"), str(tmp_path / "ref")
    killed_at = kill_half_way(["tests.frames_job", url, *inputs], url, at_least=4, timeout_s=180)
    out = open_location(url)
    assert 4 <= killed_at < 48, f"kill came at {killed_at} shards: not half-way"
    run_frames(inputs, url, SMALL)
    run_frames(inputs, ref, SMALL)
    keys = committed_keys(url)
    assert not [k for k, n in collections.Counter(keys).items() if n > 1]
    assert sorted(keys) == sorted(committed_keys(ref))
    assert len(keys) == 10 * 24
    assert sorted(s["__key__"] for s in iter_samples(out)) == sorted(keys)



def _kill_resume_loop(inputs: list[str], url: str, cycles: int, seed: int) -> list[str]:
    """Start a whole Ray run (driver + embedded Ray) ``cycles`` times and SIGKILL its
    process group at a seeded random moment, the next run started at once. A moment is either early (startup, sampling: 0.5-8 s) or while writing
    (after the run's first shard claim and 0-2 further commits, then 0-0.2 s), so
    each cycle commits a few shards and the ten never finish the work. Returns one
    ``phase:committed-shards`` per kill."""
    import random
    import signal
    import subprocess
    import sys
    import time

    rng = random.Random(seed)
    out = open_location(url)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    points = []
    for _ in range(cycles):
        claims = len(out.list("claims"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.frames_job", url, *inputs], cwd=REPO, env=env,
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        early = rng.random() < 0.3
        delay = rng.uniform(0.5, 8.0) if early else rng.uniform(0.0, 0.2)
        if not early:  # the run's first claim (its void markers are made by then), then 0-2 commits
            while proc.poll() is None and len(out.list("claims")) == claims:
                time.sleep(0.02)
            target = len(out.list("stats")) + rng.randint(0, 2)
            while proc.poll() is None and len(out.list("stats")) < target:
                time.sleep(0.02)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        ended = proc.poll() is not None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the run had ended and its whole group was gone
        proc.wait()
        points.append(f"{'ended' if ended else 'early' if early else 'writing'}:{len(committed_stats(out))}")
    return points


@pytest.mark.parametrize("where", ["local", "s3"])
def test_ten_kills_at_random_moments_under_cpu_load_resume_exactly(where, videos, uninterrupted_keys, tmp_path,
                                                                   ray_local, request):
    import subprocess
    import sys

    from factory.pipelines.frames import run_frames

    # Ten videos, 50 shards: commits come in bursts of a whole video (5 shards) on a quiet
    # machine, so six videos (30) were done before the tenth kill and later kills found
    # nothing left to interrupt (CI, 2026-12-03: writing kills 4 of 8).
    inputs = [str(p) for p in videos["copies"]]
    url = str(tmp_path / "ds") if where == "local" else f"{request.getfixturevalue('s3_env')}/ds"
    # One busy loop takes one of CI's two cores: each run starts, writes and dies under load.
    stress = [subprocess.Popen([sys.executable, "-c", "while True: pass"])]
    try:
        points = _kill_resume_loop(inputs, url, cycles=10, seed=16)
    finally:
        for p in stress:
            p.kill()
            p.wait()
    print(f"\nkill points ({where}, phase:committed shards at each SIGKILL): {points}")
    run_frames(inputs, url, SMALL)  # the last resume, run to its end
    keys, expected = committed_keys(url), uninterrupted_keys
    assert len(expected) == 10 * 24
    assert sorted(keys) == expected  # none lost, none twice
    assert sorted(s["__key__"] for s in iter_samples(open_location(url))) == expected
    assert sum(p.startswith("writing") for p in points) >= 5  # kills came while shards were written

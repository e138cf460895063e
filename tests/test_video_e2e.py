"""`factory video` end to end: videos over HTTP through yt-dlp into S3, bad
URLs as error rows, and a run killed half-way that resumes exactly."""

from __future__ import annotations

import collections
import functools
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from factory.dataset import read_errors
from factory.shards import iter_samples
from factory.storage import open_location
from tests.test_video_pipeline import CONTRACT
from tests.resume_helpers import committed_keys, kill_half_way
from tests.video_job import ONE_PER_SHARD

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(talking_3d, tmp_path_factory):
    """A static web server on 127.0.0.1: a video, an HTML page, nothing else."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(talking_3d.path, root / "talk.mp4")
    (root / "page.html").write_text("<html><body><p>no video here</p></body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_factory_video_from_http_to_s3(site, s3_env, tmp_path):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text(
        f"# one good video, a page that is not a video, a port nobody listens on\n"
        f"{site}/talk.mp4\n{site}/page.html\nhttp://127.0.0.1:{_closed_port()}/gone.mp4\n"
    )
    out = f"{s3_env}/video-ds"
    done = subprocess.run(
        [sys.executable, "-m", "factory", "video", "--input", str(inputs), "--out", out, "--style", "any", "--workers", "1:1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loc = open_location(out)
    samples = list(iter_samples(loc))
    assert len(samples) == 2  # the video's two shots, one face track each
    for sample in samples:
        meta = json.loads(sample["json"])
        assert CONTRACT <= set(meta) and meta["kind"] == "video_face"
        assert meta["source_url"] == f"{site}/talk.mp4"
        assert sample["__key__"] == f"{meta['video_id']}_t_{meta['track_id']:03d}"
        assert sample["jpg"][:2] == b"\xff\xd8" and sample["voice"][:4] == b"RIFF"
    errors = read_errors(loc).column("error").to_pylist()
    assert len(errors) == 2 and all("\n" not in e for e in errors)
    assert any("page.html" in e or "Unsupported URL" in e for e in errors)


def test_video_run_killed_half_way_resumes_exactly(talking_3d, tmp_path, ray_local):
    from factory.pipelines.video import run_video

    inputs = []
    for i in range(5):
        inputs.append(str(tmp_path / f"v{i}.mp4"))
        shutil.copy(talking_3d.path, inputs[-1])
    url, ref = str(tmp_path / "ds"), str(tmp_path / "ref")
    killed_at = kill_half_way(["tests.video_job", url, *inputs], url, at_least=3, timeout_s=300)
    out = open_location(url)
    assert 3 <= killed_at < 10, f"kill came at {killed_at} shards: not half-way"
    run_video(inputs, url, ONE_PER_SHARD, resume=True)
    run_video(inputs, ref, ONE_PER_SHARD)
    keys = committed_keys(url)
    assert not [k for k, n in collections.Counter(keys).items() if n > 1]
    assert sorted(keys) == sorted(committed_keys(ref)) and len(keys) == 10
    assert sorted(s["__key__"] for s in iter_samples(out)) == sorted(keys)

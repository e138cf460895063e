"""The `factory` command line, run as users run it (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from factory.cli import COMMANDS
from tests.resume_writer import main as write_dataset

REPO = Path(__file__).resolve().parents[1]


def factory(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "factory", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_real_help(command):
    done = factory(command, "--help")
    assert done.returncode == 0
    assert COMMANDS[command].help in " ".join(done.stdout.split())


def test_inspect_summarises_a_dataset(tmp_path):
    write_dataset(str(tmp_path / "ds"), 10, 0.0)
    done = factory("inspect", str(tmp_path / "ds"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["samples"] == 27 and summary["errors"] == 1 and summary["inputs"] == 10
    assert summary["kinds"] == {"test": 27}
    assert summary["splits"] == {"train": 3 * 7, "test": 3 * 2}
    text = factory("inspect", str(tmp_path / "ds")).stdout
    assert "samples    27" in text


@pytest.mark.parametrize(
    "url, message",
    [("gopher://x/y", "unknown URL scheme"), ("s3://", "names no bucket"), ("/nonexistent/ds", "no factory dataset at")],
)
def test_bad_urls_end_in_one_line(url, message):
    done = factory("inspect", url)
    assert done.returncode == 1
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_report_draws_figures_and_contact_sheet(tmp_path):
    write_dataset(str(tmp_path / "ds"), 10, 0.0)  # input 7 of 10 fails
    done = factory("report", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "rep" / "index.html").read_text()
    for figure in ("status.png", "kinds.png", "contact_sheet.png", "hist_j.png"):
        assert (tmp_path / "rep" / figure).stat().st_size > 1000
        assert figure in page
    assert "Errors (1)" in page and "corrupt video" in page


@pytest.mark.slow
def test_demo_writes_committed_shards_that_inspect_summarises(tmp_path):
    store = {"FACTORY_MODEL_STORE": str(tmp_path / "store")}
    done = factory("demo", "--out", str(tmp_path / "demo"), timeout=900, env=store)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("detector", "classifier"):  # trained for `serve run serve.app:app`
        assert (tmp_path / "store" / name / "1" / "model.json").is_file()
    _serve_answers_with_the_demo_models(store["FACTORY_MODEL_STORE"], tmp_path)
    summary = json.loads(factory("inspect", str(tmp_path / "demo" / "frames"), "--json").stdout)
    assert summary["status"] == "complete"
    assert summary["kinds"] == {"video_frame": summary["samples"]}
    assert summary["samples"] >= 40 and summary["errors"] == 1  # the demo's corrupt input
    assert (tmp_path / "demo" / "frames" / "report" / "contact_sheet.png").exists()
    video = json.loads(factory("inspect", str(tmp_path / "demo" / "video"), "--json").stdout)
    assert video["kinds"] == {"video_face": video["samples"]} and video["samples"] >= 2 and video["errors"] == 1
    render = json.loads(factory("inspect", str(tmp_path / "demo" / "render"), "--json").stdout)
    assert render["kinds"] == {"render": 16} and set(render["splits"]) <= {"train", "test"}
    again = factory("demo", "--out", str(tmp_path / "demo"), timeout=600, env=store)
    assert "frames: skipped 4 of 4 inputs already complete" in again.stdout
    assert "video: skipped 4 of 4 inputs already complete" in again.stdout
    assert "render: skipped 2 of 2 inputs already complete" in again.stdout
    assert "detector and classifier already in" in again.stdout


def _serve_answers_with_the_demo_models(store: str, tmp_path) -> None:
    """What a user does right after `make demo`: `serve run` the shipped config and call it."""
    from tests.serve_helpers import free_port, request, serve_run

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    renders = next((tmp_path / "demo" / "render").glob("shards/*.tar"))
    with serve_run(store, tmp_path, port):
        models = request(base, "/models")[1]
        assert models["detector"]["backend"] == "yolo" and models["detector"]["model"] == "detector@1"
        assert models["detector"]["metrics"]["real_art"]["recall"] >= 0.8  # the shipped detector, scored on real art
        assert models["classifier"]["model"] == "classifier@1"
        status, body = request(base, "/analyze", _first_png(renders), "image/png")
        assert status == 200 and isinstance(body["faces"], list), body


def _first_png(shard) -> bytes:
    import tarfile

    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".png"))
        return tar.extractfile(member).read()

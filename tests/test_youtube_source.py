"""The video source through real yt-dlp against a local HTTP server; nothing leaves 127.0.0.1."""

from __future__ import annotations

import collections
import http.server
import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from factory.shards import make_key
from factory.sources.entries import web_id
from factory.sources.youtube import (
    DownloadSettings,
    SourceEntry,
    SourceError,
    download,
    expand_inputs,
    format_info,
)
from factory.synthetic.video import VideoSpec, make_video
from factory.video.decode import Video

DURATIONS = {"a.mp4": 3.0, "b.mp4": 2.0}
CONTENT_TYPES = {".html": "text/html", ".xml": "application/rss+xml"}
# No sleeps and millisecond back-off: the tests check behaviour, not politeness.
FAST = DownloadSettings(retries=2, backoff_s=0.01, sleep_requests_s=0, sleep_download_s=0, socket_timeout_s=5)


@dataclass
class Site:
    """What the test server serves and how often each path was asked for."""

    files: dict[str, bytes]
    base: str = ""
    requests: collections.Counter = field(default_factory=collections.Counter)
    fail_first: set[str] = field(default_factory=set)  # paths answering 503 to their first request

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


def _handler(site: Site) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, with_body: bool) -> None:
            name = self.path.lstrip("/").split("?")[0]
            site.requests[name] += 1
            if name in site.fail_first and site.requests[name] == 1:
                self.send_error(503)
                return
            body = site.files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(Path(name).suffix, "video/mp4"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

    return Handler


def _rss(site: Site, names: list[str]) -> bytes:
    items = "".join(f"<item><title>{n}</title><enclosure url='{site.url(n)}' type='video/mp4'/></item>" for n in names)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>feed</title>{items}</channel></rss>".encode()


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("served")
    specs = {
        name: VideoSpec(duration_s=d, cut_s=None, speech=(), width=160, height=120, seed=i)
        for i, (name, d) in enumerate(DURATIONS.items())
    }
    return {name: make_video(folder / name, spec).path for name, spec in specs.items()}


@pytest.fixture
def site(videos: dict[str, Path]):
    site = Site(files={name: path.read_bytes() for name, path in videos.items()})
    site.files["flaky.mp4"] = site.files["a.mp4"]
    site.fail_first.add("flaky.mp4")
    site.files["page.html"] = b"<html><head><title>no video</title></head><body><p>just text</p></body></html>"
    site.files["embed.html"] = b"<html><body><video src='b.mp4'></video></body></html>"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    site.files["feed.xml"] = _rss(site, ["a.mp4", "b.mp4"])
    yield site
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone.mp4"


def _duration(path: Path) -> float:
    with Video(path) as video:
        return video.meta.duration_s


def test_mp4_urls_expand_and_download(site: Site, tmp_path: Path) -> None:
    entries = expand_inputs([site.url("a.mp4"), site.url("b.mp4")], FAST)
    assert [e.error for e in entries] == [None, None]
    assert [e.kind for e in entries] == ["web", "web"]
    assert [e.extractor for e in entries] == ["generic", "generic"]
    assert entries[0].video_id.startswith("generic_a_") and entries[1].video_id.startswith("generic_b_")
    for entry, name in zip(entries, DURATIONS):
        path = download(entry, FAST, tmp_path)
        assert path.parent == tmp_path and path.name == f"{entry.video_id}.mp4"
        assert _duration(path) == pytest.approx(DURATIONS[name], abs=0.2)
        info = format_info(path)
        assert info["bytes"] == path.stat().st_size == len(site.files[name])
        assert info["ext"] == "mp4" and info["extractor_key"] == "Generic" and info["format_id"]


def test_ids_are_dot_free_keys() -> None:
    assert web_id("dQw4w9WgXcQ", "Youtube", "u") == "dQw4w9WgXcQ"
    assert web_id("-abc_def123", "Youtube", "u") == "yt-abc_def123"
    assert web_id("12.34", "Vimeo", "u") == "vimeo_12_34"
    generic = web_id("my.clip", "Generic", "http://x/my.clip.mp4")
    assert generic.startswith("generic_my_clip_")
    for video_id in ("dQw4w9WgXcQ", "yt-abc_def123", "vimeo_12_34", generic):
        assert make_key(video_id) == video_id


def test_list_file_expands_in_order_with_stable_ids(site: Site, videos: dict[str, Path], tmp_path: Path) -> None:
    local = tmp_path / "clips" / "local.clip.mp4"
    local.parent.mkdir()
    local.write_bytes(videos["b.mp4"].read_bytes())
    listing = tmp_path / "inputs.txt"
    listing.write_text(
        "# videos for the test\n\n"
        f"{site.url('b.mp4')}\n"
        "clips/local.clip.mp4\n"  # relative to the list file
        f"   {site.url('a.mp4')}   \n"
        "# a duplicate below is dropped\n"
        f"{site.url('b.mp4')}\n"
        f"{local}\n",
        encoding="utf-8",
    )
    first = expand_inputs(str(listing), FAST)
    assert [e.url for e in first] == [site.url("b.mp4"), str(local), site.url("a.mp4")]
    assert [e.kind for e in first] == ["web", "file", "web"]
    assert all(e.ok and "." not in e.video_id and make_key(e.video_id) == e.video_id for e in first)
    assert first[1].video_id.startswith("local_clip_")
    assert [e.video_id for e in expand_inputs(str(listing), FAST)] == [e.video_id for e in first]
    assert download(first[1], FAST, tmp_path / "work") == local  # local files pass through


def test_bad_inputs_are_error_entries_and_others_succeed(site: Site, tmp_path: Path) -> None:
    missing_file = str(tmp_path / "nope.mp4")
    bad = [site.url("page.html"), site.url("missing.mp4"), _closed_port_url(), missing_file, "ftp://x/y.mp4"]
    inputs = [site.url("a.mp4"), *bad, site.url("b.mp4")]
    entries = expand_inputs(inputs, FAST)
    assert [e.ok for e in entries] == [True, False, False, False, False, False, True]
    messages = [e.error or "" for e in entries if not e.ok]
    assert "Unsupported URL" in messages[0]
    assert "404" in messages[1]
    assert "Connection refused" in messages[2] or "Failed to establish" in messages[2]
    assert "no such file" in messages[3]
    assert "unsupported input scheme" in messages[4]
    for message in messages:
        assert "\n" not in message and "\x1b" not in message and "Traceback" not in message
        assert "caused by" not in message
    for entry in entries:
        if entry.ok:
            assert download(entry, FAST, tmp_path).is_file()
        else:
            with pytest.raises(SourceError):
                download(entry, FAST, tmp_path)


def test_download_of_bad_url_raises_one_line(site: Site, tmp_path: Path) -> None:
    for name in ("page.html", "missing.mp4"):
        entry = SourceEntry(video_id=f"bad_{name[:4]}", url=site.url(name), kind="web")
        with pytest.raises(SourceError) as caught:
            download(entry, FAST, tmp_path)
        assert site.url(name) in str(caught.value) and "\n" not in str(caught.value)
    assert site.requests["missing.mp4"] == 1  # a 404 is not retried


def test_unreachable_port_is_retried_then_fails(tmp_path: Path) -> None:
    entry = SourceEntry(video_id="gone", url=_closed_port_url(), kind="web")
    with pytest.raises(SourceError) as caught:
        download(entry, FAST, tmp_path)
    assert caught.value.transient
    assert "\n" not in str(caught.value)


def test_archive_skips_the_network_on_rerun(site: Site, tmp_path: Path) -> None:
    settings = replace(FAST, archive_file=str(tmp_path / "archive.txt"))
    [entry] = expand_inputs(site.url("a.mp4"), settings)
    first = download(entry, settings, tmp_path / "work")
    assert entry.archive_id in (tmp_path / "archive.txt").read_text().splitlines()
    before = site.requests["a.mp4"]
    again = download(entry, settings, tmp_path / "work")
    assert again == first and site.requests["a.mp4"] == before
    first.unlink()  # archived but gone from workdir: fetched again
    assert download(entry, settings, tmp_path / "work").is_file()
    assert site.requests["a.mp4"] > before


def test_transient_503_is_retried(site: Site, tmp_path: Path) -> None:
    [entry] = expand_inputs(site.url("flaky.mp4"), FAST)
    assert entry.ok
    assert site.requests["flaky.mp4"] == 2  # 503, then the page
    path = download(entry, FAST, tmp_path)
    assert _duration(path) == pytest.approx(DURATIONS["a.mp4"], abs=0.2)


def test_no_retries_means_a_503_fails(site: Site, tmp_path: Path) -> None:
    settings = replace(FAST, retries=0)
    entry = SourceEntry(video_id="flaky", url=site.url("flaky.mp4"), kind="web")
    with pytest.raises(SourceError, match="503") as caught:
        download(entry, settings, tmp_path)
    assert caught.value.transient and site.requests["flaky.mp4"] == 1


def test_max_filesize_rejects_a_large_file(site: Site, tmp_path: Path) -> None:
    limit = len(site.files["a.mp4"]) - 1
    settings = replace(FAST, max_filesize=limit)
    [entry] = expand_inputs(site.url("a.mp4"), settings)
    with pytest.raises(SourceError, match="larger than max_filesize") as caught:
        download(entry, settings, tmp_path)
    assert f"({len(site.files['a.mp4'])} > {limit} bytes)" in str(caught.value)
    assert not list(tmp_path.glob(f"{entry.video_id}*"))


def test_rss_feed_expands_to_its_videos(site: Site, tmp_path: Path) -> None:
    entries = expand_inputs(site.url("feed.xml"), FAST)
    assert [e.url for e in entries] == [site.url("a.mp4"), site.url("b.mp4")]
    assert [e.title for e in entries] == ["a.mp4", "b.mp4"]
    assert _duration(download(entries[1], FAST, tmp_path)) == pytest.approx(DURATIONS["b.mp4"], abs=0.2)


def test_html5_video_embed_downloads(site: Site, tmp_path: Path) -> None:
    [entry] = expand_inputs(site.url("embed.html"), FAST)
    assert entry.ok and entry.extractor == "html5mediaembed"
    assert _duration(download(entry, FAST, tmp_path)) == pytest.approx(DURATIONS["b.mp4"], abs=0.2)


def test_s3_input_is_fetched(s3_env: str, videos: dict[str, Path], tmp_path: Path) -> None:
    from factory.storage import open_location

    open_location(s3_env).put_bytes("in/clip.mp4", videos["a.mp4"].read_bytes())
    open_location(s3_env).put_bytes("in/list.txt", b"clip.mp4\nmissing.mp4\n")
    entries = expand_inputs(f"{s3_env}/in/list.txt")
    assert [(e.url, e.ok) for e in entries] == [(f"{s3_env}/in/clip.mp4", True), (f"{s3_env}/in/missing.mp4", False)]
    path = download(entries[0], FAST, tmp_path)
    assert path.name == f"{entries[0].video_id}.mp4"
    assert _duration(path) == pytest.approx(DURATIONS["a.mp4"], abs=0.2)


def test_nested_playlists_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel lists tabs (flat playlist entries), each tab lists videos: shaped as yt-dlp returns them."""
    import factory.sources.manifest as manifest

    def video(vid: str) -> dict:
        return {"_type": "url", "ie_key": "Youtube", "id": vid, "url": f"https://www.youtube.com/watch?v={vid}",
                "title": vid.upper(), "duration": 61}  # fmt: skip

    pages = {
        "https://www.youtube.com/@chan": {
            "_type": "playlist", "uploader": "Chan",
            "entries": [{"_type": "url", "ie_key": "YoutubeTab", "url": f"https://www.youtube.com/@chan/{t}"}
                        for t in ("videos", "shorts")],
        },
        "https://www.youtube.com/@chan/videos": {
            "_type": "playlist", "channel": "Chan",
            "entries": [video("v1aaaaaaaaa"), None, video("-v2aaaaaaaa")],  # None: a video yt-dlp could not list
        },
        "https://www.youtube.com/@chan/shorts": {
            "_type": "playlist", "channel": "Chan", "entries": [video("v1aaaaaaaaa"), video("s1aaaaaaaaa")],
        },
    }  # fmt: skip
    monkeypatch.setattr(manifest, "_extract", lambda url, settings: pages[url])
    entries = expand_inputs("https://www.youtube.com/@chan")
    assert [e.video_id for e in entries] == ["v1aaaaaaaaa", "yt-v2aaaaaaaa", "s1aaaaaaaaa"]
    assert {e.uploader for e in entries} == {"Chan"}
    assert entries[0].archive_id == "youtube v1aaaaaaaaa" and entries[0].duration_s == 61.0
    assert entries[0].input == "https://www.youtube.com/@chan"


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        DownloadSettings(retries=-1)
    with pytest.raises(ValueError):
        DownloadSettings(max_filesize=0)
    assert DownloadSettings(max_height=480).format == "bv*[height<=?480]+ba/b[height<=?480]"

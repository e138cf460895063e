"""yt-dlp behind one narrow door: settings, options, quiet runs, one-line errors, retries.

yt-dlp prints progress, warnings and coloured tracebacks by default. Here it
runs quiet with a logger that only collects its messages; every failure
becomes one :class:`SourceError` whose message is a single plain line, and
transient failures (HTTP 429/5xx, timeouts, refused or reset connections) are
retried with exponential back-off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yt_dlp
from yt_dlp.utils import YoutubeDLError

T = TypeVar("T")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CAUSED_BY = re.compile(r"\s*\(caused by .*$")
_REPORT_BUG = re.compile(r";?\s*please report this issue.*$", re.IGNORECASE)
# Failures worth another try: the server or the network may recover.
_TRANSIENT = re.compile(
    r"HTTP Error (408|429|5\d\d)|timed out|Connection (reset|refused|aborted)"
    r"|Remote end closed|IncompleteRead|Temporary failure|Network is unreachable",
    re.IGNORECASE,
)
_MAX_MESSAGE = 300


class SourceError(Exception):
    """An input could not be expanded or downloaded. The message is one line.

    ``transient`` is True when retrying later may succeed (rate limit, 5xx,
    network); the retry loop only repeats those.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class DownloadSettings:
    """How the source talks to video sites; one object for expanding and downloading.

    YouTube limits guests to a few hundred videos an hour (about 300) and
    answers more with HTTP 429 or a "sign in to confirm you're not a bot"
    page, so the defaults sleep between requests and between downloads. Every
    parallel worker sleeps on its own: N workers make N times the requests.
    A cookies file (Netscape format, exported from a signed-in browser)
    raises the limit; keep it out of version control.
    """

    retries: int = 3  # extra attempts after a transient failure
    backoff_s: float = 2.0  # first back-off; doubles on every further attempt
    backoff_max_s: float = 60.0  # cap on one back-off sleep
    sleep_requests_s: float = 0.75  # between HTTP requests while extracting (yt-dlp --sleep-requests)
    sleep_download_s: float = 5.0  # before each download (yt-dlp --sleep-interval)
    max_height: int = 720  # best video at most this tall, merged with the best audio
    max_filesize: int | None = 2 * 1024**3  # bytes; a larger file fails with a clear message
    merge_format: str = "mp4"  # container for merged video+audio (ffmpeg)
    cookies_file: str | None = None
    archive_file: str | None = None  # yt-dlp download archive: ids listed there are not fetched again
    socket_timeout_s: float = 30.0
    max_videos_per_url: int | None = None  # cap on the videos taken from one channel or playlist

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.max_height <= 0:
            raise ValueError("max_height must be > 0")
        if self.max_filesize is not None and self.max_filesize <= 0:
            raise ValueError("max_filesize must be > 0 bytes or None")
        if min(self.backoff_s, self.backoff_max_s, self.sleep_requests_s, self.sleep_download_s) < 0:
            raise ValueError("back-off and sleep times must be >= 0")
        if self.socket_timeout_s <= 0:
            raise ValueError("socket_timeout_s must be > 0")

    @property
    def format(self) -> str:
        """yt-dlp format selector: best video up to max_height + best audio, else best single file.

        ``<=?`` lets formats of unknown height pass (direct links, the
        generic extractor), which a plain ``<=`` would reject.
        """
        h = self.max_height
        return f"bv*[height<=?{h}]+ba/b[height<=?{h}]"

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return min(self.backoff_max_s, self.backoff_s * 2**attempt)


class CollectingLogger:
    """A yt-dlp logger that keeps messages instead of printing them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def _keep(self, message: str) -> None:
        self.messages.append(_ANSI.sub("", message).strip())

    debug = info = warning = error = _keep

    def find(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The last message matching ``pattern``, as a match."""
        for message in reversed(self.messages):
            if found := pattern.search(message):
                return found
        return None


def base_options(settings: DownloadSettings, logger: CollectingLogger) -> dict[str, Any]:
    """yt-dlp options shared by expanding and downloading: quiet, timeouts, sleeps, cookies."""
    sleep: Callable[[int], float] = settings.backoff
    options: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "socket_timeout": settings.socket_timeout_s,
        "sleep_interval_requests": settings.sleep_requests_s,
        "format": settings.format,
        "merge_output_format": settings.merge_format,
        # yt-dlp's own retries cover failures inside a download (it resumes the .part file).
        "retries": settings.retries,
        "fragment_retries": settings.retries,
        "extractor_retries": settings.retries,
        "retry_sleep_functions": {"http": sleep, "fragment": sleep, "extractor": sleep},
    }
    if settings.cookies_file:
        options["cookiefile"] = str(Path(settings.cookies_file).expanduser())
    return options


def one_line(text: str) -> str:
    """yt-dlp's error text as one short plain line (no colour, prefix, cause chain)."""
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    line = lines[0] if lines else "unknown yt-dlp error"
    line = line.removeprefix("ERROR:").strip()
    line = _REPORT_BUG.sub("", _CAUSED_BY.sub("", line))
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def run_ytdl(url: str, options: dict[str, Any], download: bool) -> dict[str, Any]:
    """``YoutubeDL(options).extract_info(url)``; any failure becomes one SourceError."""
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=download)
    except (YoutubeDLError, OSError) as exc:
        reason = one_line(str(exc) or type(exc).__name__)
        raise SourceError(f"{url}: {reason}", transient=bool(_TRANSIENT.search(reason))) from None
    if not info:
        raise SourceError(f"{url}: yt-dlp returned nothing (filtered out or skipped)")
    return info


def with_retries(call: Callable[[], T], settings: DownloadSettings) -> T:
    """Run ``call``; repeat it after a transient SourceError, sleeping with exponential back-off."""
    for attempt in range(settings.retries):
        try:
            return call()
        except SourceError as exc:
            if not exc.transient:
                raise
        time.sleep(settings.backoff(attempt))
    return call()

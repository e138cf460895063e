"""Streaming video and audio decode.

A video is opened once with decord; its frame timestamps and key frames come
from the container index, a sampling policy (looked up by name in
`SAMPLING_POLICIES`) picks frame indices, and frames are decoded in batches
of at most `SamplingSettings.batch_size`, so a long video never sits in
memory whole. The frames come from one read through the stream that skips
what no wanted frame needs (factory/video/framestream.py, PyAV); decord
decodes whatever that read cannot.
Audio is decoded in process by PyAV (factory/video/soundtrack.py), span by
span, to mono float32 at 16 kHz, so memory holds one span at a time
(decord's AudioReader decodes the whole stream when it opens: a 10-minute
video's audio took 640 MB of peak memory there).

Every failure to open or decode ends as one `VideoDecodeError` with a
one-line message, never a decord traceback.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import decord
import numpy as np
from decord.base import DECORDError

from factory.video import framestream, soundtrack

AUDIO_SAMPLE_RATE = 16_000
# Errors decord raises for unreadable input (it uses both).
_DECORD_ERRORS = (RuntimeError, DECORDError)
# decord prefixes messages (nested, sometimes twice) with "[hh:mm:ss] /src/file.cc:123: ".
_DECORD_PREFIX = re.compile(r"^(?:\[[\d:]+\]\s+\S+:\d+:\s*)+")
# ... and internal checks with "Check failed: <expression> (<a> vs. <b>) "; the words after it say more.
_DECORD_CHECK = re.compile(r"^Check failed: .*?\(-?\d+ vs\. -?\d+\)\s*")
T = TypeVar("T")


class VideoDecodeError(Exception):
    """A video could not be opened or decoded. The message is one line."""


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = _DECORD_CHECK.sub("", _DECORD_PREFIX.sub("", lines[0])) if lines else type(exc).__name__
    # decord's open failure says only "Error reading <path>..."; ffmpeg's reason goes to stderr.
    return "damaged or unsupported container" if text.startswith("Error reading") else text


@dataclass(frozen=True)
class VideoMeta:
    """What the container says about a video."""

    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int


@dataclass(frozen=True)
class Timeline:
    """What a sampling policy sees of a video."""

    times: np.ndarray  # (n,) start time of each frame in seconds, ascending
    key_indices: np.ndarray  # sorted indices of key (I) frames
    duration_s: float


@dataclass(frozen=True)
class SamplingSettings:
    """Which frames to decode, and how many per decode call."""

    policy: str = "every"  # a key of SAMPLING_POLICIES
    interval_s: float = 0.5  # method A: one frame every 0.5 s
    p_frames_per_s: float = 1.0  # method D: key frames plus one P-frame per second
    batch_size: int = 16  # frames per decode call; bounds memory

    def __post_init__(self) -> None:
        if self.policy not in SAMPLING_POLICIES:
            known = ", ".join(sorted(SAMPLING_POLICIES))
            raise ValueError(f"unknown sampling policy {self.policy!r}; known: {known}")
        if self.interval_s <= 0 or self.p_frames_per_s <= 0 or self.batch_size < 1:
            raise ValueError("interval_s and p_frames_per_s must be > 0 and batch_size >= 1")


def _frame_at(timeline: Timeline, times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time (the last one starting at or before it)."""
    # The small slack keeps a frame whose timestamp is 0.49999 for t = 0.5.
    idx = np.searchsorted(timeline.times, times + 1e-6, side="right") - 1
    return np.clip(idx, 0, len(timeline.times) - 1)


def sample_every(timeline: Timeline, settings: SamplingSettings) -> np.ndarray:
    """Method A: the frame on screen every `interval_s` seconds from 0."""
    targets = np.arange(0.0, timeline.duration_s, settings.interval_s)
    return np.unique(_frame_at(timeline, targets))


def sample_keyframes(timeline: Timeline, settings: SamplingSettings) -> np.ndarray:
    """Method D: every key frame plus the first non-key frame of each 1/p_frames_per_s window."""
    is_key = np.zeros(len(timeline.times), dtype=bool)
    is_key[timeline.key_indices] = True
    window = np.floor(timeline.times * settings.p_frames_per_s + 1e-9).astype(np.int64)
    others = np.flatnonzero(~is_key)
    _, first = np.unique(window[others], return_index=True)
    return np.union1d(timeline.key_indices, others[first])


SamplingPolicy = Callable[[Timeline, SamplingSettings], np.ndarray]
SAMPLING_POLICIES: dict[str, SamplingPolicy] = {
    "every": sample_every,
    "keyframes": sample_keyframes,
}


@dataclass(frozen=True)
class FrameBatch:
    """Decoded frames of one batch, in frame order."""

    indices: np.ndarray  # (n,) int64 frame indices
    times: np.ndarray  # (n,) float64 frame start times, seconds
    kinds: tuple[str, ...]  # 'k' for a key frame, 'p' for any other
    frames: np.ndarray  # (n, height, width, 3) uint8 RGB

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, float, str, np.ndarray]]:
        """Yield (frame_index, time_s, kind, frame) per frame."""
        for i, index in enumerate(self.indices):
            yield int(index), float(self.times[i]), self.kinds[i], self.frames[i]


class Video:
    """An open video (a path or the file's bytes) with streaming frame and audio access.

    Use as a context manager; bytes are spilled to a temporary file that
    `close()` removes.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        sample_rate: int = AUDIO_SAMPLE_RATE,
        num_threads: int = 0,
    ) -> None:
        self._tmp_path: Path | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.name = f"<{len(source)} bytes>"
            path = self._spill(bytes(source))
        else:
            path = Path(source)
            self.name = path.name
        self.sample_rate = sample_rate
        try:
            self._open(path, num_threads)
        except BaseException:
            self.close()
            raise

    def _spill(self, data: bytes) -> Path:
        with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as tmp:
            tmp.write(data)
        self._tmp_path = Path(tmp.name)
        return self._tmp_path

    def _fail(self, what: str) -> VideoDecodeError:
        return VideoDecodeError(f"{self.name}: {what}")

    def _open(self, path: Path, num_threads: int) -> None:
        if not path.is_file():
            raise self._fail("no such file")
        if path.stat().st_size == 0:
            raise self._fail("empty file (0 bytes)")
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
            frame_count = len(self._reader)
            if frame_count == 0:
                raise self._fail("no video frames")
            stamps = self._reader.get_frame_timestamp(np.arange(frame_count))
            keys = np.asarray(self._reader.get_key_indices(), dtype=np.int64)
            height, width = self._reader[0].shape[:2]
            self._reader.seek(0)  # parked: decord would go on decoding ahead in its thread (see _decord_batch)
            fps = float(self._reader.get_avg_fps())
        except _DECORD_ERRORS as exc:
            raise self._fail(f"not a readable video ({_reason(exc)})") from None
        self._path = path
        self._has_audio: bool | None = None
        duration = float(stamps[-1, 1]) if stamps[-1, 1] > 0 else frame_count / fps
        self.timeline = Timeline(times=stamps[:, 0].astype(np.float64), key_indices=keys, duration_s=duration)
        self.meta = VideoMeta(
            fps=fps,
            frame_count=frame_count,
            duration_s=duration,
            width=int(width),
            height=int(height),
        )

    @property
    def has_audio(self) -> bool:
        """Whether the container holds an audio stream (its headers are read once, when asked)."""
        if self._has_audio is None:
            try:
                self._has_audio = soundtrack.has_audio(self._path)
            except soundtrack.SoundtrackError as exc:
                raise self._fail(f"unreadable audio stream ({exc})") from None
        return self._has_audio

    def plan(self, sampling: SamplingSettings) -> np.ndarray:
        """Sorted frame indices the sampling policy picks."""
        return SAMPLING_POLICIES[sampling.policy](self.timeline, sampling)

    def frame_batches(self, sampling: SamplingSettings | None = None, prefetch: int = 0) -> Iterator[FrameBatch]:
        """Decode the planned frames, at most `sampling.batch_size` per decode call.

        With ``prefetch`` > 0 a thread decodes up to that many batches ahead
        while the caller works on the current one (decord releases the GIL).
        """
        sampling = sampling or SamplingSettings()
        batches = self.frames_at(self.plan(sampling), sampling.batch_size)
        return Prefetched(batches, prefetch) if prefetch > 0 else batches

    def frames_at(self, indices: np.ndarray, batch_size: int = SamplingSettings.batch_size) -> Iterator[FrameBatch]:
        """Decode the given sorted frame indices, at most `batch_size` per batch.

        One read through the stream (factory/video/framestream.py) delivers
        them; whatever it cannot (a damaged packet, a frame without a
        timestamp) decord decodes, and decord's error is the one raised.
        """
        indices = np.asarray(indices, dtype=np.int64)
        is_key = np.isin(indices, self.timeline.key_indices)
        stream = framestream.decode_sampled(self._path, self.timeline.times, self.timeline.key_indices, indices)
        try:
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                yield FrameBatch(
                    indices=chunk,
                    times=self.timeline.times[chunk],
                    kinds=tuple("k" if k else "p" for k in is_key[start : start + len(chunk)]),
                    frames=self._take(stream, chunk),
                )
        finally:
            stream.close()

    def _take(self, stream: Iterator[tuple[int, np.ndarray]], chunk: np.ndarray) -> np.ndarray:
        """The chunk's frames from ``stream`` while it delivers them in order, from decord after that."""
        frames: list[np.ndarray] = []
        for want in chunk:
            got = next(stream, None)
            if got is None or got[0] != want:
                break
            frames.append(got[1])
        rest = chunk[len(frames) :]
        if len(rest) == 0:
            return np.stack(frames)
        stream.close()  # stopped, or out of step: decord decodes from here on
        decoded = self._decord_batch(rest)
        return np.concatenate([np.stack(frames), decoded]) if frames else decoded

    def _decord_batch(self, chunk: np.ndarray) -> np.ndarray:
        try:
            frames = self._reader.get_batch(chunk.tolist()).asnumpy()
            # decord's reader keeps decoding ahead after get_batch, into memory that grows with
            # the video (dmlc/decord#208, #197); parking it at frame 0 stops that. Measured on a
            # 10-minute 720p video: peak RSS of a decode pass 674 -> 485 MB, and faster.
            self._reader.seek(0)
        except _DECORD_ERRORS as exc:
            span = f"{chunk[0]}-{chunk[-1]}"
            raise self._fail(f"cannot decode frames {span} ({_reason(exc)})") from None
        return frames

    def audio_spans(self, spans: Sequence[tuple[float, float]]) -> Iterator[np.ndarray] | None:
        """Audio of each (start_s, end_s) span, mono float32 in [-1, 1] at `sample_rate`; None without audio.

        Decoded in process, one span at a time as the iterator is read
        (factory/video/soundtrack.py); a decode error raises `VideoDecodeError`.
        """
        if self._has_audio is False:
            return None
        try:
            decoded = soundtrack.audio_spans(self._path, spans, self.sample_rate)
        except soundtrack.SoundtrackError as exc:
            raise self._fail(f"cannot decode audio ({exc})") from None
        self._has_audio = decoded is not None
        return None if decoded is None else self._reraise(decoded)

    def _reraise(self, spans: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        try:
            yield from spans
        except soundtrack.SoundtrackError as exc:
            raise self._fail(f"cannot decode audio ({exc})") from None

    def audio(self, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
        """Audio of [start_s, end_s) (default: all), mono float32 at `sample_rate`; empty without audio."""
        spans = self.audio_spans([(start_s, self.meta.duration_s + 1.0 if end_s is None else end_s)])
        if spans is None:
            return np.zeros(0, dtype=np.float32)
        with contextlib.closing(spans):
            return next(spans)

    def audio_track(self) -> np.ndarray | None:
        """The whole audio track, mono float32 at `sample_rate`; None without audio."""
        spans = self.audio_spans([(0.0, self.meta.duration_s + 1.0)])
        if spans is None:
            return None
        with contextlib.closing(spans):
            return next(spans)

    def close(self) -> None:
        """Release the readers and remove a spilled temporary file."""
        self._reader = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AudioAhead:
    """A short video's whole audio track decoded in a thread (its own ffmpeg process)
    while the caller mines frames; `spans` then cuts the spans out of it.

    Videos longer than ``max_s`` keep `Video.audio_spans` after the frames (the
    whole track would cost 3.8 MB a minute at 16 kHz). A decode error re-raises
    from `spans`, where `audio_spans` would have raised it. Close it before the video.
    """

    def __init__(self, video: Video, max_s: float) -> None:
        self._video = video
        self._pool: ThreadPoolExecutor | None = None
        self._track: Future | None = None
        if video.meta.duration_s <= max_s:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="factory-audio")
            self._track = self._pool.submit(video.audio_track)

    @property
    def whole_track(self) -> bool:
        """True when the whole track is (being) decoded here: its spans are views, costing no memory."""
        return self._track is not None

    def spans(self, spans: Sequence[tuple[float, float]]) -> Iterator[np.ndarray] | None:
        """What `Video.audio_spans` returns for these spans."""
        if self._track is None:
            return self._video.audio_spans(spans)
        track = self._track.result()
        if track is None:
            return None
        rate = self._video.sample_rate
        cuts = [(round(max(start, 0.0) * rate), round(max(end - start, 0.0) * rate)) for start, end in spans]
        return iter([track[a : a + n] for a, n in cuts])

    def close(self) -> None:
        """Wait for the thread (a short ffmpeg run) and release it."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> AudioAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_DONE = object()


def _produce(items: Iterator, ready: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            while not stop.is_set():
                try:
                    ready.put((item, None), timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        ready.put((_DONE, None))
    except BaseException as exc:  # handed to the consumer, raised there
        ready.put((_DONE, exc))


class Prefetched(Iterator[T]):
    """Iterate ``items`` with a thread producing up to ``depth`` ahead; its exceptions re-raise here.

    The thread starts at once, so work is under way before the first `next`.
    `close` (also on garbage collection, as for a generator) stops the thread
    before it pulls another item.
    """

    def __init__(self, items: Iterator[T], depth: int, name: str = "decode-prefetch") -> None:
        self._ready: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        # The thread holds the queue and the event, not self, so dropping self closes it.
        args = (items, self._ready, self._stop)
        self._thread = threading.Thread(target=_produce, args=args, name=name, daemon=True)
        self._thread.start()

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item, error = self._ready.get()
        if item is _DONE:
            self.close()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the thread; later `next` calls end the iteration."""
        self._done = True
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._ready.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.1)

    def __del__(self) -> None:
        self.close()

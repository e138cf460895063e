"""A video's soundtrack decoded in process with PyAV (FFmpeg's libraries), span by span.

In process because an `ffmpeg` CLI run spends about 70 ms of CPU loading its
libraries before it decodes anything: as much as decoding every sampled frame
of a 12 s 360p video. Measured 2026-12-06 on a 12 s AAC track to 16 kHz mono:
ffmpeg CLI 80-90 ms of CPU, decord's AudioReader 30 ms (and it decodes the
whole stream at open), PyAV 11 ms.

Spans are decoded lazily in one read through the stream (resample, cut on
the first frame's timestamp), so memory holds about one span, however long
the video. A packet that does not decode is skipped, as the ffmpeg CLI does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import av
import numpy as np


class SoundtrackError(Exception):
    """The container or its audio stream cannot be read; the message is one line."""


def _open(path: str | os.PathLike[str]) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise SoundtrackError(_message(exc)) from None


def _message(exc: BaseException) -> str:
    # PyAV's messages end with the file name; the caller names the video already.
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the container holds an audio stream (reads the headers only)."""
    with _open(path) as container:
        return bool(container.streams.audio)


def audio_spans(path: str | os.PathLike[str], spans: Sequence[tuple[float, float]], sample_rate: int) -> Iterator[np.ndarray] | None:
    """Each (start_s, end_s) span of the first audio stream, mono float32 in [-1, 1]; None without audio.

    The iterator decodes a span when asked for it; a container that fails
    mid-way raises `SoundtrackError` from `next`.
    """
    if not has_audio(path):
        return None
    return _decode_each(path, list(spans), sample_rate)


def _decode_each(path: str | os.PathLike[str], spans: list[tuple[float, float]], sample_rate: int) -> Iterator[np.ndarray]:
    track: _Track | None = None
    try:
        for start, end in spans:
            start = max(start, 0.0)
            if track is None or track.position_s > start:
                if track is not None:
                    track.close()
                track = _Track(path, sample_rate)  # from the top: spans out of time order cost a re-read
            yield track.cut(start, max(end - start, 0.0))
    finally:
        if track is not None:
            track.close()


class _Track:
    """The first audio stream read once from its start, mono float32 at `rate`; `cut` takes spans in time order.

    Always from the start, never by seeking: AAC's noise substitution (PNS)
    draws from a generator that runs across frames, so a decoder that seeks
    gives other samples than one that reads through, and a span would differ
    from the same stretch of the whole track.
    """

    def __init__(self, path: str | os.PathLike[str], rate: int) -> None:
        self.rate = rate
        self._container = _open(path)
        self._frames = self._decoded(self._container)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._offset = 0  # track sample index of _buffer[0]
        self._first: float | None = None  # time of the track's first sample
        self._done = False

    @property
    def position_s(self) -> float:
        """Time of the earliest sample still held: a later span can start no earlier."""
        return (self._first or 0.0) + self._offset / self.rate

    def _decoded(self, container) -> Iterator[np.ndarray]:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue  # a damaged packet loses its few milliseconds, not the track (the CLI's way)
            for frame in frames:
                if self._first is None:
                    self._first = float(frame.time) if frame.time is not None else 0.0
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1)

    def cut(self, start_s: float, length_s: float) -> np.ndarray:
        """Samples of [start_s, start_s + length_s); a track that starts late or ends early is not padded."""
        want = round(length_s * self.rate)
        parts, held = [self._buffer], len(self._buffer)  # held: samples in parts, from track sample _offset
        try:
            while not self._done:
                if self._first is not None:
                    begin = max(round((start_s - self._first) * self.rate), 0)
                    if self._offset + held >= begin + want:
                        break
                    if self._offset + held <= begin:  # a gap between spans: nothing held is wanted
                        self._offset, parts, held = self._offset + held, [], 0
                piece = next(self._frames, None)
                if piece is None:
                    self._done = True
                else:
                    parts.append(piece)
                    held += len(piece)
        except av.FFmpegError as exc:
            raise SoundtrackError(_message(exc)) from None
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        begin = max(round((start_s - (self._first or 0.0)) * self.rate) - self._offset, 0)
        # Keep from this span's start on: the next span (in time order) may overlap this one.
        self._buffer, self._offset = samples[begin:], self._offset + begin
        return np.clip(samples[begin : begin + want], -1.0, 1.0).astype(np.float32, copy=False)

    def close(self) -> None:
        self._container.close()

"""Sampled frames decoded in one read through the stream (PyAV), skipping what no wanted frame needs.

A frame the sampling plan does not want is still handed to the decoder when
later frames predict from it, but the decoder is told to drop it when no
other frame refers to it (FFmpeg's ``skip_frame = NONREF``): most B-frames
of a typical H.264 upload. A stretch of key-frame intervals holding no
wanted frame is skipped with a seek. The frames that come out are the ones a
full decode gives, bit for bit (tests/test_decode.py). Measured 2026-12-08
on the four 12 s 360p benchmark videos (72 % B-frames), 96 sampled frames
(`benchmarks/video.py`): decord's get_batch 0.60 CPU-s, this 0.35.

Frames are named by their index in presentation order, as decord counts
them, matched on the timestamp: decord's timeline starts at 0, the stream's
at its ``start_time``. Whatever this reader cannot deliver (an unreadable
packet, a frame without a timestamp, a stream it cannot open) is left to
the caller's fallback: `decode_sampled` stops and returns what it found.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import av
import numpy as np

# A decoded frame names a timeline frame when their times differ by less than this share of a frame.
_MATCH_SHARE = 0.25


def decode_sampled(
    path: str | os.PathLike[str], times: np.ndarray, key_indices: np.ndarray, wanted: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 frame) for the ``wanted`` sorted indices into ``times``, in order.

    ``times`` are the frames' start times from 0 in presentation order,
    ``key_indices`` the key frames among them. Stops early, without raising,
    where the stream cannot be read on: the indices not yielded are the
    caller's to decode another way.
    """
    wanted = np.asarray(wanted, dtype=np.int64)
    if len(wanted) == 0:
        return
    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return
    with container:
        try:
            yield from _read(container, np.asarray(times, np.float64), np.asarray(key_indices, np.int64), wanted)
        except av.FFmpegError:
            return


def _read(container, times: np.ndarray, keys: np.ndarray, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    if not container.streams.video or not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
        return  # a timeline frames cannot be named on (decord reads AVI's first stamps as -3.8e17)
    stream = container.streams.video[0]
    codec = stream.codec_context
    base = float(stream.time_base)
    start = float(stream.start_time or 0) * base
    tolerance = _MATCH_SHARE * (float(np.median(np.diff(times))) if len(times) > 1 else 1.0)
    want = set(wanted.tolist())
    pos = 0  # next position in `wanted`

    def index_of(pts: int | None) -> int | None:
        if pts is None:
            return None
        t = pts * base - start
        i = int(np.searchsorted(times, t))
        near = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t))
        return near if abs(times[near] - t) < tolerance else None

    def key_before(target: int) -> int:
        """The key frame at or before ``target``."""
        at = int(np.searchsorted(keys, target, side="right")) - 1
        return int(keys[max(at, 0)]) if len(keys) else 0

    def worth_a_seek(key: int) -> bool:
        """Whether a whole key-frame interval with nothing wanted lies between what was read and ``key``."""
        return key != last_seek and np.searchsorted(keys, key) > np.searchsorted(keys, reached, side="right")

    reached, last_seek = -1, None  # the highest frame index demuxed so far; the key frame last sought
    while pos < len(wanted):
        key = key_before(int(wanted[pos]))
        if worth_a_seek(key):
            # Never the same key twice: a demuxer that lands earlier is read through from there.
            container.seek(round((times[key] + start) / base), stream=stream, backward=True, any_frame=False)
            codec.flush_buffers()
            last_seek = key
        for packet in container.demux(stream):
            index = index_of(packet.pts) if packet.size else None
            if packet.size and index is None:
                return  # a frame this reader cannot name: the rest is the fallback's
            if index is not None:
                reached = max(reached, index)
                codec.skip_frame = "DEFAULT" if index in want else "NONREF"
            for frame in codec.decode(packet):
                got = index_of(frame.pts)
                if got is None or pos == len(wanted):
                    continue
                if got > wanted[pos]:
                    return  # a wanted frame never came out (damaged): the fallback decodes it
                if got == wanted[pos]:
                    yield got, frame.to_ndarray(format="rgb24")
                    pos += 1
            # Frames still inside the decoder are older than `reached`, so none is wanted any more.
            if pos < len(wanted) and worth_a_seek(key_before(int(wanted[pos]))):
                break
        else:
            return  # end of stream

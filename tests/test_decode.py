"""Streaming decode: metadata, sampling policies, bounded batches, audio, bad input."""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time

import av
import decord
import numpy as np
import pytest

from factory.video import framestream
from factory.video.decode import SAMPLING_POLICIES, SamplingSettings, Video, VideoDecodeError, Prefetched


def _frames(video: Video, sampling: SamplingSettings) -> list[tuple[int, float, str, np.ndarray]]:
    return [row for batch in video.frame_batches(sampling) for row in batch]


def test_metadata_matches_what_was_made(talking_2d):
    spec = talking_2d.spec
    with Video(talking_2d.path) as video:
        meta, has_audio = video.meta, video.has_audio
    assert (meta.width, meta.height) == (spec.width, spec.height)
    assert meta.fps == pytest.approx(spec.fps)
    assert meta.frame_count == len(talking_2d.frame_times)
    assert meta.duration_s == pytest.approx(spec.duration_s, abs=1 / spec.fps)
    assert has_audio


def test_every_policy_samples_half_seconds(talking_2d):
    with Video(talking_2d.path) as video:
        rows = _frames(video, SamplingSettings())
    times = np.array([t for _, t, _, _ in rows])
    assert times[0] == 0.0
    assert np.allclose(np.diff(times), 0.5, atol=1e-3)
    assert len(times) == round(talking_2d.spec.duration_s / 0.5)
    assert [i for i, _, _, _ in rows] == list(range(0, len(talking_2d.frame_times), 12))


def test_every_policy_interval_is_a_setting(talking_2d):
    with Video(talking_2d.path) as video:
        times = [t for _, t, _, _ in _frames(video, SamplingSettings(interval_s=2.0))]
    assert np.allclose(times, np.arange(0.0, talking_2d.spec.duration_s, 2.0), atol=1e-3)


def test_keyframes_policy_tags_decord_key_frames_and_one_p_frame_per_second(talking_2d):
    with Video(talking_2d.path) as video:
        rows = _frames(video, SamplingSettings(policy="keyframes"))
    decord_keys = decord.VideoReader(str(talking_2d.path)).get_key_indices()
    keys = [i for i, _, kind, _ in rows if kind == "k"]
    assert keys == decord_keys == list(talking_2d.key_indices)
    p_seconds = [int(t) for _, t, kind, _ in rows if kind == "p"]
    assert p_seconds == list(range(round(talking_2d.spec.duration_s)))  # exactly one per second
    assert not set(i for i, _, kind, _ in rows if kind == "p") & set(decord_keys)


def test_batches_are_bounded_and_the_stream_is_read_lazily(talking_2d, monkeypatch):
    read: list[int] = []  # frame indices the one-pass stream has handed over so far
    original = framestream.decode_sampled

    def spy(*args):
        for index, frame in original(*args):
            read.append(index)
            yield index, frame

    monkeypatch.setattr(framestream, "decode_sampled", spy)
    fallback = _count_decord_batches(monkeypatch)
    every_frame = SamplingSettings(interval_s=1 / talking_2d.spec.fps, batch_size=10)
    with Video(talking_2d.path) as video:
        batches = video.frame_batches(every_frame)
        first = next(batches)
        assert len(first) == 10 and read == list(range(10))  # nothing decoded past the first batch yet
        sizes = [len(first)] + [len(batch) for batch in batches]
    n_frames = len(talking_2d.frame_times)
    assert sum(sizes) == n_frames and max(sizes) <= 10
    assert read == list(range(n_frames)) and fallback == []


def _count_decord_batches(monkeypatch) -> list[int]:
    """Sizes of the batches decord decodes (the fallback of the one-pass stream)."""
    calls: list[int] = []
    original = Video._decord_batch

    def spy(video, chunk):
        calls.append(len(chunk))
        return original(video, chunk)

    monkeypatch.setattr(Video, "_decord_batch", spy)
    return calls


def _reencode(source, target, *args: str):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *args, str(target)], check=True)
    return target


@pytest.mark.parametrize(
    "name, args",
    [
        ("as_made.mp4", ()),  # H.264 with B-frames, most of them unreferenced
        ("offset.mp4", ("-c", "copy", "-output_ts_offset", "2")),  # the stream starts at 2 s, decord's timeline at 0
        ("vp9.webm", ("-an", "-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime")),
        ("hevc.mkv", ("-an", "-c:v", "libx265", "-x265-params", "log-level=error")),
    ],
)
def test_one_pass_stream_gives_a_full_decodes_frames_bit_for_bit(talking_2d, tmp_path, monkeypatch, name, args):
    path = talking_2d.path if not args else _reencode(talking_2d.path, tmp_path / name, *args)
    with av.open(str(path)) as container:  # the truth: every frame decoded in order, none skipped
        every = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])
    fallback = _count_decord_batches(monkeypatch)
    with Video(path) as video:
        n = video.meta.frame_count
        plans = {
            "every 0.5 s": video.plan(SamplingSettings()),
            "key frames + 1 P/s": video.plan(SamplingSettings(policy="keyframes")),
            "far apart (seeks)": np.array(sorted({3, n // 2, n // 2 + 1, n - 1})),
        }
        for plan, indices in plans.items():
            got = np.concatenate([batch.frames for batch in video.frames_at(indices, batch_size=5)])
            assert np.array_equal(got, every[indices]), plan
            if name == "as_made.mp4":  # decord agrees here (not on HEVC's open GOPs: it seeks into them wrongly)
                assert np.array_equal(got, decord.VideoReader(str(path)).get_batch(indices.tolist()).asnumpy())
    assert fallback == []  # every frame came from the stream, none from decord


def test_frames_the_stream_cannot_name_come_from_decord(talking_2d, tmp_path, monkeypatch):
    # decord reads the first time stamps of an AVI with B-frames as about -3.8e17 s: no frame can be matched.
    path = _reencode(talking_2d.path, tmp_path / "bframes.avi", "-an", "-c:v", "mpeg4", "-bf", "2")
    fallback = _count_decord_batches(monkeypatch)
    with Video(path) as video:
        indices = video.plan(SamplingSettings())
        got = np.concatenate([batch.frames for batch in video.frames_at(indices, batch_size=4)])
    assert len(got) == len(indices) and sum(fallback) == len(indices)


def test_frames_are_rgb_uint8(talking_2d):
    with Video(talking_2d.path) as video:
        batch = next(video.frame_batches(SamplingSettings(batch_size=4)))
    assert batch.frames.dtype == np.uint8
    assert batch.frames.shape == (4, talking_2d.spec.height, talking_2d.spec.width, 3)
    # The 2D sky is flat RGB (150, 200, 240); BGR order would swap red and blue.
    sky = batch.frames[0, 40, 5].astype(int)
    assert np.abs(sky - [150, 200, 240]).max() <= 8


def test_audio_is_16k_mono_float(talking_2d):
    with Video(talking_2d.path) as video:
        audio = video.audio()
        assert video.sample_rate == 16_000
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(talking_2d.spec.duration_s * 16_000, rel=0.01)
    assert 0.3 < np.abs(audio).max() <= 1.0


def test_audio_spans_equal_the_whole_track_cut_in_any_order(talking_2d):
    """Spans out of time order and overlapping give exactly the samples of the whole track."""
    spans = [(1.0, 2.5), (2.0, 3.0), (4.0, 7.25), (0.5, 1.0), (7.0, 99.0)]
    with Video(talking_2d.path) as video:
        whole = video.audio()
        cut = list(video.audio_spans(spans))
    for (start, end), span in zip(spans, cut):
        assert np.array_equal(span, whole[round(start * 16_000) : round(end * 16_000)])
    assert len(cut[2]) == round(3.25 * 16_000) and len(cut[4]) == len(whole) - 7 * 16_000  # ends with the track


@pytest.mark.parametrize("codec, container", [("libopus", "webm"), ("aac", "m4a")])
def test_48k_stereo_soundtracks_match_the_ffmpeg_cli(talking_2d, tmp_path, codec, container):
    """What video sites serve (Opus in WebM, AAC in MP4, 48 kHz stereo) comes out as the CLI's 16 kHz mono."""
    from factory.video import soundtrack

    track = tmp_path / f"track.{container}"
    encode = ["ffmpeg", "-v", "error", "-i", str(talking_2d.path), "-vn", "-ac", "2", "-ar", "48000", "-c:a", codec]
    subprocess.run([*encode, "-b:a", "128k", str(track)], check=True)
    cli = subprocess.run(["ffmpeg", "-v", "error", "-i", str(track), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    want = np.frombuffer(cli, np.float32)
    got = next(soundtrack.audio_spans(track, [(0.0, 99.0)], 16_000))
    assert abs(len(got) - len(want)) <= 0.01 * len(want)
    n = min(len(got), len(want))
    assert np.corrcoef(got[:n], want[:n])[0, 1] > 0.999  # in the same place: one sample off gives 0.90


def test_damaged_audio_packets_are_skipped_not_fatal(talking_2d, tmp_path):
    """Garbage in the middle of an AAC stream loses a few frames, not the soundtrack (the ffmpeg CLI's way)."""
    from factory.video import soundtrack

    m4a = tmp_path / "voice.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(talking_2d.path), "-vn", "-c:a", "copy", str(m4a)], check=True)
    clean = next(soundtrack.audio_spans(m4a, [(0.0, 99.0)], 16_000))
    data = bytearray(m4a.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes()
    m4a.write_bytes(bytes(data))
    damaged = next(soundtrack.audio_spans(m4a, [(0.0, 99.0)], 16_000))
    assert abs(len(damaged) - len(clean)) <= 0.05 * len(clean)
    assert np.array_equal(damaged[: 16_000], clean[: 16_000])  # the first second is untouched
    assert not np.array_equal(damaged[: len(clean)], clean[: len(damaged)])  # and the garbage did land


def test_video_without_audio_is_not_an_error(silent_video):
    with Video(silent_video.path) as video:
        assert not video.has_audio
        assert video.audio().shape == (0,) and video.audio_spans([(0.0, 1.0)]) is None
        assert len(_frames(video, SamplingSettings())) == 8


def test_bytes_input_uses_a_temporary_file_that_close_removes(silent_video):
    video = Video(silent_video.path.read_bytes())
    spilled = video._tmp_path
    assert spilled is not None and spilled.exists()
    assert video.meta.frame_count == len(silent_video.frame_times)
    video.close()
    assert not spilled.exists()


def test_one_frame_video(one_frame_video):
    with Video(one_frame_video.path) as video:
        assert video.meta.frame_count == 1
        for policy in SAMPLING_POLICIES:
            rows = _frames(video, SamplingSettings(policy=policy))
            assert [(i, kind) for i, _, kind, _ in rows] == [(0, "k")]


@pytest.mark.parametrize("kind", ["zero_byte", "corrupt_header", "corrupt_payload", "missing"])
def test_bad_input_raises_one_clear_error(bad_files, kind):
    path = bad_files[kind]
    with pytest.raises(VideoDecodeError) as caught:
        with Video(path) as video:
            _frames(video, SamplingSettings(interval_s=1 / 24))
    message = str(caught.value)
    assert "\n" not in message and path.name in message
    assert caught.value.__cause__ is None  # no decord traceback chained on


def test_garbage_bytes_raise_the_same_error_and_leave_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    garbage = np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(VideoDecodeError, match="not a readable video"):
        Video(garbage)
    assert list(tmp_path.iterdir()) == []


def test_sampling_settings_reject_unknown_policy():
    with pytest.raises(ValueError, match="unknown sampling policy"):
        SamplingSettings(policy="all")


def test_prefetched_batches_equal_plain_ones(talking_2d):
    with Video(talking_2d.path) as video:
        plain = [(b.indices.tolist(), b.frames.sum()) for b in video.frame_batches()]
        ahead = [(b.indices.tolist(), b.frames.sum()) for b in video.frame_batches(prefetch=2)]
    assert ahead == plain and len(plain) > 1


def test_prefetched_reraises_the_producer_error_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for item in Prefetched(items(), 1):
            got.append(item)
    assert got == [1, 2]


def test_prefetched_starts_working_before_the_first_next():
    """The audio of a video's tracks is cleaned while the face mesh runs: the thread must not wait for `next`."""
    started = threading.Event()

    def items():
        started.set()
        yield 1

    ahead = Prefetched(items(), 1)
    assert started.wait(5.0)
    assert list(ahead) == [1]


def test_closing_prefetched_early_stops_its_thread():
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    ahead = Prefetched(endless(), 1)
    assert next(ahead) == 0
    ahead.close()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 3
    assert not any(t.name == "decode-prefetch" and t.is_alive() for t in threading.enumerate())


def test_audio_decoded_ahead_cuts_the_spans_audio_spans_decodes(talking_2d, silent_video):
    """AudioAhead (whole track in a thread, then cut) gives the spans of one ffmpeg span call."""
    from factory.video.decode import AudioAhead

    spans = [(0.5, 1.75), (2.0, 3.9), (3.5, 3.5)]
    with Video(talking_2d.path) as video:
        direct = list(video.audio_spans(spans))
        with AudioAhead(video, max_s=600.0) as ahead:
            cut = list(ahead.spans(spans))
        with AudioAhead(video, max_s=1.0) as fallback:  # too long to decode whole: spans decoded when asked
            late = list(fallback.spans(spans))
    assert [len(c) for c in cut] == [len(d) for d in direct] and len(cut[2]) == 0
    assert all(np.abs(c - d).max() < 1e-3 for c, d in zip(cut[:2], direct[:2]))
    assert all(np.array_equal(a, b) for a, b in zip(late, direct))
    with Video(silent_video.path) as video, AudioAhead(video, max_s=600.0) as ahead:
        assert ahead.spans([(0.0, 1.0)]) is None

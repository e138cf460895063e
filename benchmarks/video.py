"""Video pipeline benchmark: end-to-end vs decode-only frames/s, stage shares, 1 vs 2 actors, peak RSS.

    python -m benchmarks.video [--long-min 10] [--repeats 3] [--quick] [--json figures.json]

``--quick`` measures only the ratios and stage shares (no Ray runs, no peak
RSS, no looped long videos): the before/after of a change in minutes.

All figures come from one run on the same synthetic inputs (factory/synthetic/video.py):
- decode-only: `Video.frames_at` (the pipeline's decoder) of the frames the 0.5 s
  policy samples, and decord's get_batch of the same frames (the decoder before
  the one-pass stream of factory/video/framestream.py);
- CPU seconds of both sides (every thread, ffmpeg children): steadier than
  wall time on a shared VM;
- end-to-end: `VideoMiner` (decode, style, shots, MediaPipe, face mesh,
  alignment, tracks, audio) on the same videos in this process, per stage,
  with and without the decode thread;
- pass 1's pieces alone, per sampled 360p frame, and the bound they put on
  the ratio (`pass1_costs_ms`);
- Ray: `run_video` over the short videos with 1 and with 2 actors;
- peak RSS of a fresh process mining a 1-minute 720p video and the same
  looped to 3 and 10 minutes (flat in length?).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from factory.synthetic.video import VideoSpec, make_video

SHORT = VideoSpec(style="3d", duration_s=12.0, width=640, height=360, cut_s=6.3, seed=1)


class Timed:
    """Wraps a callable and adds its wall time to `totals[name]`."""

    def __init__(self, fn, name: str, totals: dict[str, float]) -> None:
        self.fn, self.name, self.totals = fn, name, totals

    def __getattr__(self, attr):
        return getattr(self.fn, attr)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.totals[self.name] += time.perf_counter() - start


AUDIO_STAGE = "audio (denoise + VAD; a thread, overlaps the face mesh)"


def _item(path: Path) -> dict:
    """The pipeline's input row for one local video."""
    from dataclasses import asdict

    from factory.pipelines.inputs import video_items

    return asdict(video_items(str(path))[0])


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (ffmpeg) so far, every thread."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _pipeline_decode(video, indices) -> int:
    return sum(len(batch) for batch in video.frames_at(indices))


def _decord_decode(video, indices, batch: int = 16) -> int:
    """decord's get_batch, as Video decoded before the one-pass stream (the issue-15 baseline)."""
    for start in range(0, len(indices), batch):
        video._decord_batch(indices[start : start + batch])
    return len(indices)


def decode_only(paths: list[Path], decoder=_pipeline_decode) -> tuple[int, float, float]:
    """Frames sampled every 0.5 s, and the wall and CPU seconds to decode them with ``decoder``."""
    from factory.video.decode import SamplingSettings, Video

    frames, start, cpu = 0, time.perf_counter(), cpu_seconds()
    for path in paths:
        with Video(path) as video:
            frames += decoder(video, video.plan(SamplingSettings()))
    return frames, time.perf_counter() - start, cpu_seconds() - cpu


def end_to_end(paths: list[Path], prefetch: int) -> tuple[float, dict[str, float], float]:
    """Wall seconds to mine the videos in process, seconds per stage, and CPU seconds."""
    from factory.pipelines.video import VideoConfig, VideoMiner

    miner = VideoMiner(VideoConfig(style_filter="any", prefetch=prefetch))
    totals: dict[str, float] = defaultdict(float)
    miner.detector = Timed(miner.detector, "detection (MediaPipe)", totals)
    miner.frontalizer = Timed(miner.frontalizer, "landmarks (face mesh)", totals)
    miner.voice = Timed(miner.voice, AUDIO_STAGE, totals)
    miner._scan = Timed(miner._scan, "pass 1", totals)
    miner(_item(paths[0]))  # model load and first-call costs
    totals.clear()
    start, cpu = time.perf_counter(), cpu_seconds()
    for path in paths:
        rows = miner(_item(path))
        if any("__error__" in r for r in rows):
            raise RuntimeError(f"{path}: {rows[0]['__error__']}")
    total, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    # Pass 1 runs the detector; the face mesh runs after it, on each track's best candidates.
    stages = {k: v for k, v in totals.items() if k != "pass 1"}
    stages["decode wait, shots, style, face crop JPEG (pass 1 rest)"] = totals["pass 1"] - totals["detection (MediaPipe)"]
    # The audio runs in a thread beside the face mesh: it overlaps the other stages, not adds to them.
    stages["tracks, align, audio read, other"] = total - sum(v for k, v in stages.items() if k != AUDIO_STAGE)
    return total, stages, cpu


def pass1_costs_ms(paths: list[Path]) -> dict[str, float]:
    """Milliseconds per sampled frame of decode and of each piece of pass 1's main-thread work, alone.

    With the decode thread, pass 1 can go no faster than the slower of the two
    sides, so ``decode / max(decode, main-thread sum)`` bounds its ratio even
    before the face mesh, the audio and the rest of a video's work.
    """
    from actors.detection import make_detector
    from factory.pipelines.video import VideoConfig, _thumb
    from factory.video.candidates import face_crop
    from factory.video.decode import SamplingSettings, Video
    from factory.video.shots import colour_histogram
    from factory.video.style import frame_style_score

    cfg = VideoConfig()
    start = time.perf_counter()
    frames = []
    for path in paths:
        with Video(path) as video:
            frames += [f for batch in video.frame_batches(SamplingSettings()) for f in batch.frames]
    costs = {"decode (alone)": time.perf_counter() - start}
    detector = make_detector(cfg.detector, cfg.detection)
    detector(frames[:1])  # model load
    start = time.perf_counter()
    faces = [found[0] if found else None for found in detector(frames)]
    costs["detection (MediaPipe)"] = time.perf_counter() - start
    work = {
        "style score": lambda f, d: frame_style_score(f, cfg.style),
        "shot histogram": lambda f, d: colour_histogram(f, cfg.shots),
        "face crop JPEG + thumbnail": lambda f, d: d is not None and (
            face_crop(f, d, cfg.frontal.mesh_margin, cfg.align.crop_margin, cfg.jpeg_quality), _thumb(f, d.bbox, cfg.thumb_size)),
    }
    for name, fn in work.items():
        start = time.perf_counter()
        for frame, face in zip(frames, faces):
            fn(frame, face)
        costs[name] = time.perf_counter() - start
    return {k: 1000 * v / len(frames) for k, v in costs.items()}


def ray_runs(paths: list[Path], folder: Path) -> dict[int, float]:
    """Wall seconds of run_video with 1 and 2 actors (Ray started once, 2 CPUs)."""
    import ray

    from factory.pipelines.video import VideoConfig, run_video

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = {}
    try:
        for actors in (1, 2):
            start = time.perf_counter()
            config = VideoConfig(style_filter="any", workers=(actors, actors))
            run_video([str(p) for p in paths], str(folder / f"ray{actors}"), config)
            out[actors] = time.perf_counter() - start
    finally:
        ray.shutdown()
    return out


def peak_rss_mb(path: Path) -> float:
    """Peak RSS (MB) of a fresh process that mines one video."""
    code = (
        "import resource,sys\n"
        "from benchmarks.video import _item\n"
        "from factory.pipelines.video import VideoConfig, VideoMiner\n"
        "from pathlib import Path\n"
        "rows = VideoMiner(VideoConfig(style_filter='any'))(_item(Path(sys.argv[1])))\n"
        "assert not any('__error__' in r for r in rows), rows\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"mining {path.name} failed: {done.stderr.strip().splitlines()[-3:]}")
    return float(done.stdout.strip().splitlines()[-1])


def long_videos(folder: Path, minutes: tuple[int, ...]) -> dict[int, Path]:
    """A 1-minute 720p synthetic video (two shots, speech) and the same looped to each length in ``minutes``."""
    spec = VideoSpec(style="3d", duration_s=60.0, width=1280, height=720, cut_s=30.3, seed=7)
    videos = {1: make_video(folder / "minute.mp4", spec).path}
    for n in minutes:
        videos[n] = folder / f"long{n}m.mp4"
        loop = ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(n - 1), "-i", str(videos[1]), "-c", "copy", str(videos[n])]
        subprocess.run(loop, check=True)
    return videos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-min", type=int, default=10, help="minutes of the long 720p video for peak RSS")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved decode-only / end-to-end repeats")
    parser.add_argument("--quick", action="store_true", help="ratios and stage shares only: no Ray, no peak RSS")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shorts = [make_video(folder / f"short{i}.mp4", replace(SHORT, seed=i)).path for i in range(4)]
        longs = long_videos(folder, () if args.quick else (3, args.long_min))
        # Interleaved repeats, median of each: other load on the machine hits both sides alike.
        runs = [
            (decode_only(shorts), end_to_end(shorts, prefetch=1), end_to_end(shorts, prefetch=0), decode_only(shorts, _decord_decode))
            for _ in range(args.repeats)
        ]
        frames = runs[0][0][0]
        decode_s = statistics.median(r[0][1] for r in runs)
        total_s = statistics.median(r[1][0] for r in runs)
        serial_s = statistics.median(r[2][0] for r in runs)
        decord_s = statistics.median(r[3][1] for r in runs)
        decode_cpu = statistics.median(r[0][2] for r in runs)
        decord_cpu = statistics.median(r[3][2] for r in runs)
        total_cpu = statistics.median(r[1][2] for r in runs)
        stages = {k: statistics.median(r[1][1][k] for r in runs) for k in runs[0][1][1]}
        costs = [pass1_costs_ms(shorts) for _ in range(args.repeats)]
        pass1_ms = {k: statistics.median(c[k] for c in costs) for k in costs[0]}
        minute_decode = statistics.median(decode_only([longs[1]])[1] for _ in range(args.repeats))
        minute_total = statistics.median(end_to_end([longs[1]], prefetch=1)[0] for _ in range(args.repeats))
        minute_decord = statistics.median(decode_only([longs[1]], _decord_decode)[1] for _ in range(args.repeats))
        ray_s = {} if args.quick else ray_runs(shorts, folder)
        rss = {} if args.quick else {f"{n} min 720p": peak_rss_mb(path) for n, path in sorted(longs.items())}
    figures = {
        "inputs": "4 synthetic 3D videos, 12 s, 640x360, 24 fps; sampling every 0.5 s",
        "sampled_frames": frames,
        "decode_fps": frames / decode_s,
        "end_to_end_fps": frames / total_s,
        "ratio_end_to_end_vs_decode": decode_s / total_s,
        "decord_decode_fps": frames / decord_s,
        "ratio_end_to_end_vs_decord_decode": decord_s / total_s,
        "cpu_s_decord_decode": decord_cpu,
        "ratio_without_prefetch": decode_s / serial_s,
        # CPU seconds (all threads, ffmpeg children): steadier than wall time on a shared VM, and
        # the ratio a CPU-bound pool of actors would reach with every core busy.
        "cpu_s_decode_only": decode_cpu,
        "cpu_s_end_to_end": total_cpu,
        "cpu_ratio_decode_vs_end_to_end": decode_cpu / total_cpu,
        "ratio_1_min_720p": minute_decode / minute_total,
        "ratio_1_min_720p_vs_decord_decode": minute_decord / minute_total,
        "pass1_ms_per_frame": pass1_ms,
        "pass1_ratio_bound": pass1_ms["decode (alone)"] / max(sum(pass1_ms.values()) - pass1_ms["decode (alone)"], pass1_ms["decode (alone)"]),
        "stage_share": {k: v / total_s for k, v in sorted(stages.items(), key=lambda kv: -kv[1])},
        "ray_wall_s": {f"{k} actor(s)": v for k, v in ray_s.items()},
        "ray_speedup_2_vs_1": ray_s[1] / ray_s[2] if ray_s else None,
        "peak_rss_mb": rss,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print("| figure | value |\n|---|---|")
    print(f"| sampled frames (4 videos) | {frames} |")
    print(f"| decode-only frames/s | {figures['decode_fps']:.1f} |")
    print(f"| end-to-end frames/s (1 process) | {figures['end_to_end_fps']:.1f} |")
    print(f"| end-to-end / decode-only | {figures['ratio_end_to_end_vs_decode']:.2f} |")
    print(f"| same, decode not prefetched | {figures['ratio_without_prefetch']:.2f} |")
    print(f"| decord get_batch frames/s (the decode before the one-pass stream) | {figures['decord_decode_fps']:.1f} |")
    print(f"| end-to-end / decord decode-only | {figures['ratio_end_to_end_vs_decord_decode']:.2f} |")
    print(f"| CPU seconds, decord decode-only | {decord_cpu:.2f} |")
    print(f"| CPU seconds, decode-only / end-to-end (4 videos) | {decode_cpu:.2f} / {total_cpu:.2f} = {figures['cpu_ratio_decode_vs_end_to_end']:.2f} |")
    print(f"| end-to-end / decode-only, the 1-minute 720p video | {figures['ratio_1_min_720p']:.2f} |")
    print(f"| same, over decord decode-only | {figures['ratio_1_min_720p_vs_decord_decode']:.2f} |")
    for name, share in figures["stage_share"].items():
        print(f"| share: {name} | {share:.1%} |")
    for name, ms in pass1_ms.items():
        print(f"| 360p ms per sampled frame: {name} | {ms:.2f} |")
    print(f"| bound on the 360p ratio from pass 1 alone: decode / max(decode, main-thread work) | {figures['pass1_ratio_bound']:.2f} |")
    for name, secs in figures["ray_wall_s"].items():
        print(f"| Ray run_video wall, {name} | {secs:.1f} s |")
    if ray_s:
        print(f"| Ray speed-up 2 vs 1 actors | {figures['ray_speedup_2_vs_1']:.2f}x |")
    for name, mb in rss.items():
        print(f"| peak RSS, {name} video | {mb:.0f} MB |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

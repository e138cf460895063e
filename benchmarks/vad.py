"""Voice activity: our noise suppression + WebRTC VAD vs silero-vad, against known speech.

    python -m benchmarks.vad [--videos 4] [--json figures.json]

Inputs: synthetic talking videos (factory/synthetic/video.py) whose espeak-ng
utterances over music lie at known times. Each detector sees the same 16 kHz
mono soundtrack; figures are frame-level F1 (10 ms frames) against the truth,
the share of non-speech frames kept out, and the seconds of audio processed
per second of compute, all from one run:

- ``webrtc+denoise``: the pipeline's `VoiceExtractor` (noisereduce, then WebRTC VAD);
- ``webrtc``: the same without noise suppression;
- ``silero``: silero-vad's packaged model (`get_speech_timestamps`, default settings);
- ``denoise+silero``: silero-vad after the same noise suppression.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from factory.synthetic.video import VideoSpec, make_video
from factory.video.audio import VoiceExtractor, VoiceSettings, silence_kept, speech_f1, suppress_noise
from factory.video.decode import Video

RATE = 16_000


def _silero():
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    torch.set_num_threads(1)
    model = load_silero_vad()  # the model file ships inside the package: nothing downloads

    def detect(audio: np.ndarray) -> list[tuple[float, float]]:
        stamps = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=RATE, return_seconds=True)
        return [(float(s["start"]), float(s["end"])) for s in stamps]

    return detect


def detectors() -> dict[str, callable]:
    """Name -> function(audio) -> speech intervals in seconds."""
    settings = VoiceSettings()
    ours, plain = VoiceExtractor(settings), VoiceExtractor(replace(settings, denoise=False))
    silero = _silero()
    return {
        "webrtc+denoise": lambda a: list(ours(a).speech_intervals),
        "webrtc": lambda a: list(plain(a).speech_intervals),
        "silero": silero,
        "denoise+silero": lambda a: silero(suppress_noise(a, settings)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4, help="synthetic videos (2D and 3D alternate)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    figures: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for i in range(args.videos):
            spec = VideoSpec(style=("2d", "3d")[i % 2], cut_s=6.3, seed=10 + i)
            video = make_video(Path(tmp) / f"v{i}.mp4", spec)
            with Video(video.path) as decoded:
                clips.append((decoded.audio(), list(video.speech_intervals), spec.duration_s))
        for name, detect in detectors().items():
            detect(clips[0][0])  # warm-up: model load, first-call costs
            row = figures.setdefault(name, {"f1": [], "silence_kept": [], "audio_s_per_s": []})
            for audio, truth, duration in clips:
                start = time.perf_counter()
                found = detect(audio)
                row["audio_s_per_s"].append(len(audio) / RATE / (time.perf_counter() - start))
                row["f1"].append(speech_f1(found, truth, duration))
                row["silence_kept"].append(silence_kept(found, truth, duration))
    base = float(np.mean(figures["webrtc+denoise"]["audio_s_per_s"]))
    print("| detector | F1 mean (min-max) | non-speech kept out | audio s per compute s | speed vs ours |")
    print("|---|---|---|---:|---:|")
    for name, row in figures.items():
        f1, speed = row["f1"], float(np.mean(row["audio_s_per_s"]))
        print(
            f"| {name} | {np.mean(f1):.3f} ({min(f1):.3f}-{max(f1):.3f}) | {np.mean(row['silence_kept']):.2f} "
            f"| {speed:.0f} | {speed / base:.2f}x |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

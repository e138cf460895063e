"""`factory video`: videos -> aligned character faces and voice clips (methods A, C, D).

One input is one video. A pool of `VideoMiner` actors (each holds a face
detector and the frontalizer's models) mines one video per call:

1. fetch (`factory.sources.youtube.fetched`): a local path as is; s3:// (any
   fsspec URL) copied to a temp file; a video inside a tar shard by its byte
   range; http(s) through yt-dlp;
2. style pre-check, only when `--style` filters and the video has at least
   `style_key_frames` key frames: the Scharr classifier on key frames spread
   over the video (a key frame decodes alone, so this costs little); a video
   of another style ends as one ``empty`` row whose index json says why (not
   an error: the input is fine, it is not wanted, and a resumed run must not
   retry it);
3. pass 1, streaming decode with the next batch decoded in a thread (0.5 s
   sampling, method A, or key frames + one P-frame per second, method D):
   shot cuts, face detection, a JPEG of the region around the face
   the tracker follows (what its landmarks and alignment read), a small grey
   face thumbnail for the motion score, and the style
   score of `style_frames` samples spread over the video, which decide its
   style (the same rule as the pre-check, on the frames decoded anyway);
   frames are dropped batch by batch;
4. tracks (hysteresis, never across a cut, >= 2 s; AniVid: single faces and
   motion >= 0.35); the face mesh runs only on each track's
   `landmark_candidates` best faces by detector score, then box area (the
   next ones when none of them qualifies); its best 1-5 faces are aligned
   (128x128, eye line level) from pass 1's crops, so no frame is decoded twice (AniVid alone decodes the track's span again at
   source fps, batch by batch, into a 256x256 mp4);
5. audio of every kept track's span (one ffmpeg call: for videos up to
   `audio_ahead_s`, the whole track decoded in a thread during pass 1, then
   cut): noise suppression, WebRTC VAD, the longest 3-19 s clip as `wav`.

One sample per track, key ``{video_id}_t_{track:03d}``: `jpg` (the best
face), `faces.jpg` (all 1-5 faces side by side), `voice` (the clip as WAV, or
empty bytes without speech; it was `wav` before), `json` (the video sample
contract of DESIGN.md) and AniVid's `mp4`; see factory/members.py.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from actors.detection import Detection, DetectorSettings, make_detector, parse_detector_spec, start_score
from actors.frontalization import Frontalizer, FrontalizerSettings
from actors.classification import load_stored_classifier, track_labels
from factory.pipelines.runner import RunResult, actor_pool_stage, run
from factory.rows import rows_for_input
from factory.pipelines.runtime import parse_pool
from factory.members import FACES, VOICE, pack_faces
from factory.shards import ShardLimits, make_key
from factory.pipelines.inputs import video_items
from factory.sources.youtube import DownloadSettings, SourceEntry, fetched
from factory.video.align import AlignSettings, FaceLandmarks, FaceMeasure, align_face, box_landmarks, choose_faces, measure
from factory.video.candidates import FaceCrop, face_crop, ranked
from factory.video.audio import VoiceExtractor, VoiceSettings, wav_bytes
from factory.video.clip import encode_clip, square_box
from factory.video.decode import AudioAhead, SamplingSettings, Video, Prefetched
from factory.video.shots import ShotSettings, colour_histogram, histogram_distance
from factory.video.style import StyleResult, StyleSettings, frame_style_score, video_style
from factory.video.tracks import ANIVID_MOTION, Track, TrackSettings, build_tracks, motion_score, pick_face

log = logging.getLogger(__name__)
STYLE_CHOICES = ("3d", "2d", "any")


@dataclass(frozen=True)
class VideoConfig:
    """Every setting of a `factory video` run, one frozen record per stage."""

    detector: str = "mediapipe"  # a --detector spec
    classifier: str | None = None  # model-store name[@version] of an age/gender classifier; no labels without
    style_filter: str = "3d"  # method A keeps 3D; 2d | any
    anivid: bool = False  # method C: single faces, motion filter, 256x256 mp4 clips
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    style: StyleSettings = field(default_factory=StyleSettings)
    style_frames: int = 24  # samples spread over the video that decide its style
    style_key_frames: int = 8  # the style filter checks key frames first when a video has this many
    prefetch: int = 1  # frame batches decoded ahead in a thread during pass 1 (0: none)
    landmark_candidates: int = 8  # face mesh on this many best faces per track, more only when none qualifies
    shots: ShotSettings = field(default_factory=ShotSettings)
    detection: DetectorSettings = field(default_factory=DetectorSettings)
    tracks: TrackSettings = field(default_factory=TrackSettings)
    frontal: FrontalizerSettings = field(default_factory=FrontalizerSettings)
    align: AlignSettings = field(default_factory=AlignSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    download: DownloadSettings = field(default_factory=DownloadSettings)
    audio_window_s: float = 60.0  # a track's audio is cleaned in windows this long (bounds memory)
    audio_ahead_s: float = 600.0  # videos up to this long decode their audio in a thread during pass 1 (0: never)
    thumb_size: int = 32  # grey face thumbnail side for the motion score
    clip_size: int = 256  # AniVid: 256x256 talking-face clips
    clip_margin: float = 1.3  # clip square side, x the track's median box side
    jpeg_quality: int = 95
    workers: tuple[int, int] = (1, 2)  # VideoMiner actor pool MIN:MAX
    gpus: float = 0.0  # GPUs per actor, used only when the cluster has GPUs
    limits: ShardLimits = field(default_factory=ShardLimits)

    def __post_init__(self) -> None:
        if self.style_filter not in STYLE_CHOICES:
            raise ValueError(f"style_filter must be one of {STYLE_CHOICES}, got {self.style_filter!r}")
        parse_detector_spec(self.detector)
        if self.landmark_candidates < 1:
            raise ValueError("landmark_candidates must be >= 1")
        if self.style_frames < 1 or self.thumb_size < 4 or self.clip_size < 16 or self.audio_window_s < 20:
            raise ValueError("need style_frames >= 1, thumb_size >= 4, clip_size >= 16, audio_window_s >= 20")
        if self.tracks.keep_score != self.detection.min_score:
            # The detector must return what the tracker may keep, and nothing it never will.
            raise ValueError("detection.min_score must equal tracks.keep_score (the hysteresis floor)")

    def frontal_settings(self) -> FrontalizerSettings:
        """The frontalizer's settings, `mesh_from_box` decided by the detector when left open."""
        if self.frontal.mesh_from_box is not None:
            return self.frontal
        # MediaPipe's detector already gives the box and eye line the face mesh would detect again.
        return replace(self.frontal, mesh_from_box=parse_detector_spec(self.detector)[0] == "mediapipe")

    def settings_json(self) -> dict[str, Any]:
        """The run config for dataset.json."""
        out = asdict(self)
        out["frontal"] = asdict(self.frontal_settings())
        out["limits"] = asdict(self.limits)
        return out


def anivid(config: VideoConfig) -> VideoConfig:
    """Method C's settings on top of a config: single-face frames, motion >= 0.35, mp4 clips."""
    tracks = replace(config.tracks, single_face_only=True, min_motion=ANIVID_MOTION)
    return replace(config, anivid=True, tracks=tracks)


# -- pass 1: what the tracker and the choice of faces need, frame by frame ---------------------
@dataclass
class Scan:
    """Small per-sample records of pass 1 (no frames)."""

    frame_indices: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    detections: list[list[Detection]] = field(default_factory=list)
    picked: list[Detection | None] = field(default_factory=list)  # the face the tracker would pick
    thumbs: list[np.ndarray | None] = field(default_factory=list)
    crops: list[FaceCrop | None] = field(default_factory=list)  # the pixels that face's landmarks need
    style_scores: list[float] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)


def _thumb(frame: np.ndarray, bbox: tuple[float, ...], size: int) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in bbox)
    crop = frame[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    return cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA)


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _spread(n: int, k: int) -> np.ndarray:
    """Sorted positions of at most ``k`` of ``n`` items, spread evenly from the first to the last."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True)
class _Chosen:
    sample: int  # position in the scan
    detection: Detection
    landmarks: FaceLandmarks
    measure: FaceMeasure | None  # None for box landmarks
    jpeg: bytes  # the face aligned


class VideoMiner:
    """Ray Data actor: one input row (a video) -> one row per face track, or one empty / error row."""

    def __init__(self, config: VideoConfig) -> None:
        self.config = config
        self.detector = make_detector(config.detector, config.detection)
        self.classifier = None
        if config.classifier:  # never invent labels: only a stored classifier gives them
            self.classifier, stored = load_stored_classifier(config.classifier)
            self.classifier_version = str(stored.ref)
        self.frontalizer = Frontalizer(config.frontal_settings())
        self.voice = VoiceExtractor(config.voice)

    def __call__(self, item: dict) -> list[dict]:
        return rows_for_input(item, lambda: self.mine(item))

    # -- the stages --------------------------------------------------------------------------
    def _style_of(self, frames) -> StyleResult:
        return video_style([frame_style_score(f, self.config.style) for f in frames], self.config.style)

    def _key_frame_style(self, video: Video) -> StyleResult | None:
        """The style from key frames spread over the video; None when it has too few of them."""
        keys = video.timeline.key_indices
        if len(keys) < self.config.style_key_frames:
            return None
        picked = keys[_spread(len(keys), self.config.style_frames)]
        return self._style_of(f for batch in video.frames_at(picked) for f in batch.frames)

    def _landmarks(self, crop: FaceCrop, pixels: np.ndarray, face: Detection, style: str) -> FaceLandmarks | None:
        # The landmark sources after the face mesh depend on the style: the video's.
        marks = self.frontalizer(pixels, crop.to_crop(face), style)
        return None if marks is None else crop.to_frame(marks)

    def _scan(self, video: Video) -> Scan:
        cfg, scan = self.config, Scan()
        plan = video.plan(cfg.sampling)
        style_at = set(_spread(len(plan), cfg.style_frames).tolist())
        previous = None
        for batch in video.frame_batches(cfg.sampling, prefetch=cfg.prefetch):
            found = self.detector(list(batch.frames))
            for (index, time_s, _, frame), faces in zip(batch, found):
                if len(scan.times) in style_at:
                    scan.style_scores.append(frame_style_score(frame, cfg.style))
                hist = colour_histogram(frame, cfg.shots)
                if previous is not None and histogram_distance(previous, hist) >= cfg.shots.threshold:
                    scan.cuts.append(time_s)
                previous = hist
                pick = pick_face(faces, cfg.tracks)
                face = None if pick is None else faces[pick]
                scan.frame_indices.append(index)
                scan.times.append(time_s)
                scan.detections.append(faces)
                scan.picked.append(face)
                scan.thumbs.append(None if face is None else _thumb(frame, face.bbox, cfg.thumb_size))
                crop = None if face is None else face_crop(frame, face, cfg.frontal.mesh_margin, cfg.align.crop_margin, cfg.jpeg_quality)
                scan.crops.append(crop)
        return scan

    def _choose(self, scan: Scan, track: Track, style: str) -> list[_Chosen]:
        """The track's best 1-5 faces; landmarks only for its best candidates, in rounds of `landmark_candidates`.

        When no landmarker fits any of its faces, its best by detector score with box landmarks.
        """
        cfg, samples = self.config, track.samples
        marks: list[FaceLandmarks | None] = [None] * len(samples)
        pixels: dict[int, np.ndarray] = {}  # this round's decoded crops: the chosen are aligned without a second decode

        def crop_pixels(i: int) -> np.ndarray:
            if i not in pixels:
                pixels[i] = scan.crops[samples[i]].pixels()
            return pixels[i]

        order, picked = ranked(samples, scan.picked), []
        for start in range(0, len(order), cfg.landmark_candidates):
            pixels.clear()  # one round's crops in memory, however long the track
            for i in order[start : start + cfg.landmark_candidates]:
                s = samples[i]
                if scan.crops[s] is not None:
                    marks[i] = self._landmarks(scan.crops[s], crop_pixels(i), scan.picked[s], style)
            measures = [measure(m) if m is not None else None for m in marks]
            picked = choose_faces(measures, cfg.align)
            if picked:
                break
        if all(m is None for m in marks):
            # No landmarker fits any face of the track (measured ones that fail the frontal rules
            # still drop it): keep its best faces by detector score, cropped upright around the box.
            picked = [i for i in order if scan.crops[samples[i]] is not None][: cfg.align.faces_per_track]
            for i in picked:
                marks[i] = box_landmarks(scan.picked[samples[i]].bbox)
            measures = [None] * len(samples)
        chosen = []
        for i in picked:
            s = samples[i]
            crop, face = scan.crops[s], scan.picked[s]
            eyes = (crop.local(marks[i].eyes[0]), crop.local(marks[i].eyes[1]))
            aligned = align_face(crop_pixels(i), eyes, crop.to_crop(face).bbox, cfg.align)
            jpeg = _encode_jpeg(aligned, cfg.jpeg_quality)
            chosen.append(_Chosen(s, scan.detections[s][track.detections[i]], marks[i], measures[i], jpeg))
        return chosen

    def _clip(self, video: Video, scan: Scan, track: Track, audio: np.ndarray | None) -> bytes:
        cfg, meta = self.config, video.meta
        boxes = [scan.detections[s][d].bbox for s, d in zip(track.samples, track.detections)]
        x0, y0, side = square_box(boxes, cfg.clip_margin, meta.width, meta.height)
        times = video.timeline.times
        indices = np.flatnonzero((times >= track.start_s) & (times < track.end_s))
        crops = (f[y0 : y0 + side, x0 : x0 + side] for b in video.frames_at(indices) for f in b.frames)
        return encode_clip(crops, meta.fps, cfg.clip_size, audio, cfg.voice.sample_rate)

    def _audio(self, span: np.ndarray | None, track: Track) -> tuple[dict, bytes | None, np.ndarray | None]:
        meta: dict[str, Any] = {"duration_s": 0.0, "speech_ratio": 0.0, **self.config.voice.metadata()}
        if span is None:
            return {**meta, "has_audio": False, "start_s": None, "end_s": None, "clips": 0}, None, None
        rate = self.config.voice.sample_rate
        # Windows bound the noise gate's memory (it grows with the input's length).
        step = max(1, int(self.config.audio_window_s * rate))
        clips, speech = [], 0.0
        for offset in range(0, len(span), step):
            result = self.voice(span[offset : offset + step])
            speech += result.speech_ratio * len(span[offset : offset + step])
            clips += [(offset / rate + c.start_s, offset / rate + c.end_s, c.samples) for c in result.clips]
        meta.update(has_audio=True, speech_ratio=round(speech / max(len(span), 1), 4), start_s=None, end_s=None, clips=0)
        if not clips:
            return meta, None, span
        start, end, samples = max(clips, key=lambda c: c[1] - c[0])
        meta.update(
            duration_s=round(end - start, 3),
            start_s=round(track.start_s + start, 3),
            end_s=round(track.start_s + end, 3),
            clips=len(clips),
        )
        return meta, wav_bytes(samples, rate), span

    # -- one video ---------------------------------------------------------------------------
    def _empty(self, item: dict, reason: str, **extra: Any) -> list[dict]:
        log.info("video %s: %s", item["input_id"], reason)
        meta = {"kind": "video_empty", "video_id": item["input_id"], "source_url": item["uri"], "reason": reason}
        return [{"__key__": make_key(item["input_id"], "empty"), "__status__": "empty", "json": {**meta, **extra}}]

    def mine(self, item: dict) -> list[dict]:
        """All rows of one video (exceptions become an error row in `__call__`)."""
        cfg = self.config
        with fetched(SourceEntry.from_dict(item["meta"]), cfg.download) as path, Video(path, sample_rate=cfg.voice.sample_rate) as video:
            if cfg.style_filter != "any":
                early = self._key_frame_style(video)
                if early is not None and early.style != cfg.style_filter:
                    return self._unwanted(item, early, "key frames")
            with AudioAhead(video, cfg.audio_ahead_s) as audio:  # decodes beside pass 1
                return self._mine_frames(item, video, audio)

    def _mine_frames(self, item: dict, video: Video, audio_ahead: AudioAhead) -> list[dict]:
        cfg = self.config
        scan = self._scan(video)
        style = video_style(scan.style_scores, cfg.style)
        if cfg.style_filter != "any" and style.style != cfg.style_filter:
            return self._unwanted(item, style, "sampled frames")
        tracks = build_tracks(scan.times, scan.detections, scan.cuts, video.meta.duration_s, cfg.tracks)
        moving = []  # (track, motion score) of the tracks that move enough to be kept
        for track in tracks:
            motion = motion_score([scan.thumbs[s] for s in track.samples if scan.thumbs[s] is not None])
            if motion >= cfg.tracks.min_motion:
                moving.append((track, motion))
        # One ffmpeg call decodes the audio: the whole track during pass 1 (short videos), else every
        # moving track's span. A thread cleans each span and finds its voice while this one runs the
        # face mesh (the core the decode used is free now); a track whose faces all fail drops its audio.
        spans = audio_ahead.spans([(t.start_s, t.end_s) for t, _ in moving])
        spans = spans if spans is not None else iter([None] * len(moving))
        ahead = max(1, len(moving)) if audio_ahead.whole_track else 1  # long videos: one span ahead in memory
        voices = Prefetched((self._audio(span, t) for (t, _), span in zip(moving, spans)), ahead, "factory-voice")
        rows = []
        try:
            for track, motion in moving:
                chosen = self._choose(scan, track, style.style)
                voice = next(voices)
                if chosen:
                    rows.append(self._row(item, video, scan, track, chosen, style, motion, voice))
        finally:
            voices.close()
        if not rows:
            return self._empty(item, f"no face track kept ({len(tracks)} tracks >= {cfg.tracks.min_duration_s} s)")
        return rows

    def _unwanted(self, item: dict, style: StyleResult, frames: str) -> list[dict]:
        reason = f"style {style.style} (score {style.style_score:.3f}, {frames}) is not the wanted {self.config.style_filter}"
        return self._empty(item, reason, style=style.style, style_score=round(style.style_score, 4))

    def _row(
        self,
        item: dict,
        video: Video,
        scan: Scan,
        track: Track,
        chosen: list[_Chosen],
        style: StyleResult,
        motion: float,
        voice: tuple[dict, bytes | None, np.ndarray | None],
    ) -> dict:
        cfg, meta = self.config, video.meta
        jpegs = [c.jpeg for c in chosen]
        audio_meta, wav, span = voice  # from `_audio`
        best = chosen[0]
        posed = best.measure is not None  # None: box landmarks, nothing measured
        yaw, pitch = (best.measure.yaw_deg, best.measure.pitch_deg) if posed else (None, None)
        info = {
            "kind": "video_face",
            "video_id": item["input_id"],
            "source_url": item["uri"],
            "track_id": track.track_id,
            "shot": track.shot,
            "start_s": round(track.start_s, 3),
            "end_s": round(track.end_s, 3),
            "fps": meta.fps,
            "width": meta.width,
            "height": meta.height,
            "style": style.style,
            "style_score": round(style.style_score, 4),
            "detector": {"name": self.detector.name, "version": self.detector.version},
            "det_score": round(best.detection.score, 4),
            "track_det_score": _r(np.mean([scan.detections[s][d].score for s, d in zip(track.samples, track.detections)])),
            "bbox": [round(v, 1) for v in best.detection.bbox],
            "landmarks": best.landmarks.to_json(),
            "landmarks_source": best.landmarks.source,
            "yaw": _r(yaw, 2),
            "pitch": _r(pitch, 2),
            "eye_openness": _r(best.measure.eye_openness) if posed else None,
            "mouth_openness": _r(best.measure.mouth_openness) if posed else None,
            "frontal_score": _r(best.measure.frontal_score) if posed else None,
            "face_time_s": round(scan.times[best.sample], 3),
            "face_times": [round(scan.times[c.sample], 3) for c in chosen],
            "face_frames": [int(scan.frame_indices[c.sample]) for c in chosen],  # source frame index per face
            # "k": a key (I) frame by decord's key indices, "p": any other frame (GochiUsa's naming)
            "face_frame_kinds": ["k" if k else "p" for k in np.isin([scan.frame_indices[c.sample] for c in chosen], video.timeline.key_indices)],
            "frame_times": [round(t, 3) for t in track.times],
            "crop_size": cfg.align.crop_size,
            "motion_score": round(motion, 3),
            "audio": audio_meta,
        }
        source = item["meta"]
        # mined from a video shard: which one, which sample (None otherwise: one json shape for all)
        shard = source.get("kind") == "shard"
        info["source_shard"] = source["url"] if shard else None
        info["source_key"] = source["source_key"] if shard else None
        info["caption"] = source.get("caption")  # a shard sample's txt (video2dataset's caption)
        if self.classifier is not None:
            faces = [cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for j in jpegs]
            info["labels"] = track_labels(self.classifier, faces, self.classifier_version)
        row: dict[str, Any] = {"__key__": make_key(item["input_id"], "t", f"{track.track_id:03d}"), "json": info}
        row["jpg"] = jpegs[0]
        # Always both members (every face, the voice or b""): one member set per kind (factory/members.py).
        row[FACES] = pack_faces(jpegs, cfg.jpeg_quality)
        row[VOICE] = wav or b""
        if cfg.anivid:
            row["mp4"] = self._clip(video, scan, track, span)
        return row


# -- the run ------------------------------------------------------------------------------------
def run_video(
    inputs: str | list[str], out_url: str, config: VideoConfig = VideoConfig(), resume: bool = True, takeover: bool = False
) -> RunResult:
    """Mine every input video into committed shards under ``out_url``."""
    items = video_items(inputs, config.download)
    build = actor_pool_stage(VideoMiner, config, config.workers, wants={"GPU": config.gpus})
    return run("video", out_url, config.settings_json(), items, build, limits=config.limits, resume=resume, takeover=takeover)


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """The `factory video` flags (the contract's names plus the settings' knobs)."""
    d, t = VideoConfig(), TrackSettings()
    parser.add_argument("--input", required=True, help=(
        "video URL, local file, s3:// URL, a .txt file listing them, or video shards: a .tar, "
        "a brace pattern (videos-{000000..000099}.tar), a folder of shards or a `factory download` OUT"
    ))
    parser.add_argument("--out", required=True, help="output folder or URL (path, file://, s3://)")
    parser.add_argument("--detector", default=d.detector, help="mediapipe | animeface | yolo:WEIGHTS.pt | yolo:NAME[@VERSION]")
    parser.add_argument("--classifier", help="model-store name[@VERSION] of an age/gender classifier (labels per track)")
    parser.add_argument("--style", default=d.style_filter, choices=STYLE_CHOICES, help="keep videos of this style")
    parser.add_argument("--workers", default="1:2", help="video miner (detection) actor pool MIN:MAX")
    parser.add_argument("--gpus", type=float, default=0.0, help="GPUs per actor (used when the cluster has GPUs)")
    parser.add_argument("--resume", action="store_true", help="continue a dataset already in --out")
    parser.add_argument(
        "--force-takeover", action="store_true",
        help="claim --out even while another run's lease is alive; that run's writers are fenced out",
    )
    parser.add_argument("--anivid", action="store_true", help="method C: single faces, motion >= 0.35, mp4 clips")
    parser.add_argument("--sampling", default="every", choices=["every", "keyframes"], help="A: every 0.5 s; D: keyframes")
    parser.add_argument(
        "--start-score", type=float,
        help="score that starts a track (default: the detector's own: MediaPipe 0.8, method A; a factory YOLO model its stored confidence)",
    )
    parser.add_argument("--keep-score", type=float, default=t.keep_score, help="score that keeps a track alive")
    parser.add_argument("--min-track-s", type=float, default=t.min_duration_s, help="shortest track kept, seconds")
    parser.add_argument("--crop-size", type=int, default=AlignSettings.crop_size, help="aligned face side, pixels")
    parser.add_argument("--characters", metavar="URL", help="then group the tracks into character samples under URL (`factory characters`, defaults)")


def config_from_args(args: argparse.Namespace) -> VideoConfig:
    """A VideoConfig from parsed `factory video` flags."""
    # The detector's own start score, never under the keep score (a model may record a low confidence).
    start = args.start_score if args.start_score is not None else max(start_score(args.detector), args.keep_score)
    tracks = TrackSettings(start_score=start, keep_score=args.keep_score, min_duration_s=args.min_track_s)
    config = VideoConfig(
        detector=args.detector,
        classifier=args.classifier,
        style_filter=args.style,
        sampling=SamplingSettings(policy=args.sampling),
        detection=DetectorSettings(min_score=args.keep_score),
        tracks=tracks,
        align=AlignSettings(crop_size=args.crop_size),
        workers=parse_pool(args.workers),
        gpus=args.gpus,
    )
    return anivid(config) if args.anivid else config


def run_video_from_args(args: argparse.Namespace) -> int:
    """`factory video` handler: run, print a one-line summary; 0 when it ran (bad inputs are error rows)."""
    config = config_from_args(args)
    result = run_video(args.input, args.out, config, resume=args.resume, takeover=args.force_takeover)
    counts = result.dataset.get("counts", {})
    print(
        f"{result.inputs_total} videos ({result.inputs_skipped} already done): "
        f"{counts.get('samples', 0)} face tracks, {counts.get('errors', 0)} errors -> {args.out}"
    )
    if args.characters:
        from factory.characters.run import run_characters

        info = run_characters(args.out, args.characters)
        print(f"{info.get('counts', {}).get('samples', 0)} characters -> {args.characters}")
    return 0


def video_demo(out_url: str, videos: list[str], workers: str = "1:2") -> RunResult:
    """The demo's video run: any style kept, so the 2D and 3D demo videos both give tracks."""
    return run_video(videos, out_url, VideoConfig(style_filter="any", workers=parse_pool(workers)))

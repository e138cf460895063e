"""Synthetic talking-face test videos with known truth, in a 2D or a 3D style.

A drawn cartoon face (head, hair, eyes, brows, nose, mouth) drifts and tilts
slowly; its mouth opens with the loudness of its own espeak-ng speech, placed
at known times over quiet synthetic music. An optional cut switches to a new
background and another character; an optional second, smaller face shares the
first shot. The 2D style paints flat fills with thick black outlines, the 3D
style shades every part as a lit ellipsoid with soft borders and no outlines.
Frames stream into ffmpeg (H.264 + AAC in mp4) one at a time. Randomness
comes only from the spec's seed.

Needs the espeak-ng and ffmpeg executables (scripts/install-system-deps.sh).
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import resample_poly

from factory.video.audio import wav_bytes
from factory.video.tools import require_tool

RGB = tuple[int, int, int]
Interval = tuple[float, float]

AUDIO_RATE = 16_000
SPEECH_PEAK = 0.6  # speech peak amplitude; music stays well below it
_LIGHT = np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])  # from top left


@dataclass(frozen=True)
class Character:
    """Colours and voice of one drawn character."""

    skin: RGB
    hair: RGB
    iris: RGB
    voice: str  # espeak-ng voice


CHARACTERS: dict[str, Character] = {
    "a": Character(skin=(250, 214, 184), hair=(110, 60, 35), iris=(60, 110, 200), voice="en+f3"),
    "b": Character(skin=(232, 186, 146), hair=(45, 45, 70), iris=(40, 140, 80), voice="en+m3"),
    "c": Character(skin=(255, 226, 204), hair=(215, 130, 50), iris=(150, 80, 40), voice="en+f2"),
    # Anime-bright hair colours, told apart by hue (identity-grouping tests).
    "blue": Character(skin=(250, 220, 200), hair=(40, 90, 220), iris=(40, 60, 180), voice="en+f4"),
    "green": Character(skin=(245, 210, 180), hair=(50, 170, 70), iris=(30, 120, 60), voice="en+m1"),
    "pink": Character(skin=(255, 225, 210), hair=(235, 90, 170), iris=(180, 40, 120), voice="en+f1"),
}


@dataclass(frozen=True)
class Placement:
    """Where a character sits in a shot: base centre as a fraction of the frame, size."""

    character: str
    x: float
    y: float
    scale: float


# Shot 0 holds the main face (and the optional second face); shot 1 follows the cut.
MAIN_FACES = (Placement("a", 0.40, 0.54, 1.0), Placement("b", 0.55, 0.52, 1.1))
SECOND_FACE = Placement("c", 0.82, 0.62, 0.5)
BACKGROUNDS: tuple[tuple[RGB, RGB], ...] = (((150, 200, 240), (120, 190, 110)), ((245, 215, 170), (170, 120, 200)))


@dataclass(frozen=True)
class SpeechLine:
    """One utterance, spoken by the main face of the shot it starts in."""

    start_s: float
    text: str


@dataclass(frozen=True)
class VideoSpec:
    """What to draw and say."""

    style: str = "2d"  # a key of STYLES
    duration_s: float = 12.0
    fps: int = 24
    width: int = 320
    height: int = 240
    cut_s: float | None = 6.5  # cut to a new background and character; None for one shot
    second_face: bool = False  # a smaller second face beside the main one in shot 0
    speech: tuple[SpeechLine, ...] = (
        SpeechLine(1.0, "Hello there, my name is Mimi and I live in a small house by the sea."),
        SpeechLine(7.0, "Good morning everyone, today we will build a little wooden boat together by the river."),
    )
    with_audio: bool = True
    music_gain: float = 0.12  # music peak amplitude
    keyframe_interval: int = 48  # a key frame every this many frames, none elsewhere
    seed: int = 0
    # A scripted edit: equal-length shots, each listing its placements (main face first);
    # when given it replaces cut_s / second_face. Backgrounds alternate shot by shot.
    shots: tuple[tuple[Placement, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; known: {', '.join(STYLES)}")
        if self.cut_s is not None and not 0 < self.cut_s < self.duration_s:
            raise ValueError("cut_s must lie inside the video")
        if any(not shot for shot in self.shots):
            raise ValueError("every scripted shot needs at least one placement")

    @property
    def n_shots(self) -> int:
        return len(self.shots) or (2 if self.cut_s is not None else 1)


@dataclass(frozen=True)
class FaceTruth:
    """Where one face is, frame by frame (NaN where it is not on screen)."""

    face_id: str
    start_s: float
    end_s: float
    eyes: np.ndarray  # (n_frames, 2, 2): image-left then image-right eye centre (x, y)
    boxes: np.ndarray  # (n_frames, 4): head box x0, y0, x1, y1
    rolls_deg: np.ndarray  # (n_frames,): head tilt, clockwise positive


@dataclass(frozen=True)
class SyntheticVideo:
    """A written test video and the truth of how it was made."""

    path: Path
    spec: VideoSpec
    frame_times: np.ndarray  # (n_frames,) seconds
    faces: tuple[FaceTruth, ...]
    speech_intervals: tuple[Interval, ...]  # where speech sounds, seconds
    speakers: tuple[str, ...]  # face_id of who speaks each speech interval
    cut_times: tuple[float, ...]  # time of the first frame of each new shot
    key_indices: tuple[int, ...]  # frames encoded as key frames

    @property
    def style(self) -> str:
        return self.spec.style


@dataclass(frozen=True)
class Part:
    """An ellipse of the face, in head radii, drawn in list order."""

    x: float
    y: float
    ax: float
    ay: float
    colour: str  # a key of _part_colours
    outline: bool = False  # 2D style only
    upper_half: bool = False  # only the half above the centre (hair cap)
    concave: bool = False  # 3D style: shaded as a hollow (mouth)


_EYE_X, _EYE_Y = 0.38, -0.05  # eye (pupil) centres in head radii: the eye truth


def _face_parts(mouth_open: float) -> list[Part]:
    parts = [Part(0, 0, 1, 1, "skin", outline=True), Part(0, -0.35, 1.06, 0.75, "hair", True, True)]
    for side in (-1, 1):
        x = side * _EYE_X
        parts += [
            Part(x, _EYE_Y, 0.2, 0.15, "white", outline=True),
            Part(x, _EYE_Y, 0.11, 0.12, "iris"),
            Part(x, _EYE_Y, 0.05, 0.055, "pupil"),
            Part(x - 0.06, _EYE_Y - 0.07, 0.03, 0.03, "white"),  # highlight, clear of the eye centre
            Part(x, -0.27, 0.18, 0.035, "brow"),
        ]
    parts += [
        Part(0, 0.2, 0.04, 0.05, "nose"),
        Part(0, 0.5, 0.22, 0.02 + 0.16 * mouth_open, "mouth", outline=True, concave=True),
    ]
    return parts


def _part_colours(character: Character) -> dict[str, RGB]:
    shade = tuple(int(c * 0.8) for c in character.skin)
    brow = tuple(int(c * 0.6) for c in character.hair)
    return {
        "skin": character.skin,
        "hair": character.hair,
        "iris": character.iris,
        "white": (250, 250, 250),
        "pupil": (25, 20, 30),
        "brow": brow,
        "nose": shade,
        "mouth": (150, 40, 50),
    }


@dataclass(frozen=True)
class Pose:
    """A face on one frame: centre and radii in pixels, tilt, mouth opening 0..1."""

    cx: float
    cy: float
    rx: float
    ry: float
    roll_deg: float
    mouth_open: float

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Face-local point (head radii) to image pixels."""
        c, s = math.cos(math.radians(self.roll_deg)), math.sin(math.radians(self.roll_deg))
        dx, dy = x * self.rx, y * self.ry
        return self.cx + c * dx - s * dy, self.cy + s * dx + c * dy

    def box(self) -> tuple[float, float, float, float]:
        c, s = math.cos(math.radians(self.roll_deg)), math.sin(math.radians(self.roll_deg))
        half_w = math.hypot(self.rx * c, self.ry * s)
        half_h = math.hypot(self.rx * s, self.ry * c)
        return self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h


# --- painting primitives: one per style -------------------------------------------------------

EllipsePainter = Callable[[np.ndarray, tuple[float, float], tuple[float, float], float, RGB, Part], None]


def _flat_ellipse(img: np.ndarray, centre, axes, angle: float, colour: RGB, part: Part) -> None:
    """2D: a flat fill, then a thick black outline for outlined parts."""
    shift = 4  # sub-pixel precision: coordinates in 1/16 px
    c = (round(centre[0] * 16), round(centre[1] * 16))
    a = (max(1, round(axes[0] * 16)), max(1, round(axes[1] * 16)))
    start, end = (180, 360) if part.upper_half else (0, 360)
    cv2.ellipse(img, c, a, angle, start, end, colour, -1, cv2.LINE_AA, shift)
    if part.outline:
        thickness = max(2, round(min(img.shape[:2]) / 80))
        cv2.ellipse(img, c, a, angle, start, end, (0, 0, 0), thickness, cv2.LINE_AA, shift)


def _shaded_ellipse(img: np.ndarray, centre, axes, angle: float, colour: RGB, part: Part) -> None:
    """3D: a Lambert-lit ellipsoid with a specular spot and a soft (1-2 px) border."""
    reach = max(axes) + 2
    x0, x1 = max(0, int(centre[0] - reach)), min(img.shape[1], int(centre[0] + reach) + 1)
    y0, y1 = max(0, int(centre[1] - reach)), min(img.shape[0], int(centre[1] + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xs - centre[0], ys - centre[1]
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    u, v = (c * dx + s * dy) / axes[0], (-s * dx + c * dy) / axes[1]
    r = np.sqrt(u * u + v * v)
    alpha = np.clip((1.0 - r) * min(axes) / 1.5, 0.0, 1.0)
    if part.upper_half:
        alpha *= np.clip(-v * axes[1] / 1.5, 0.0, 1.0)
    nz = np.sqrt(np.clip(1.0 - r * r, 0.0, 1.0))
    sign = -1.0 if part.concave else 1.0
    nx, ny = sign * (c * u - s * v), sign * (s * u + c * v)  # normal back in image orientation
    lambert = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
    highlight = (0.0 if part.concave else 60.0) * lambert**24
    shaded = np.asarray(colour, dtype=np.float64) * (0.3 + 0.7 * lambert)[..., None] + highlight[..., None]
    region = img[y0:y1, x0:x1].astype(np.float64)
    blended = region * (1 - alpha[..., None]) + np.clip(shaded, 0, 255) * alpha[..., None]
    img[y0:y1, x0:x1] = np.round(blended).astype(np.uint8)


def _flat_background(width: int, height: int, sky: RGB, ground: RGB) -> np.ndarray:
    img = np.empty((height, width, 3), dtype=np.uint8)
    horizon = int(height * 0.72)
    img[:horizon], img[horizon:] = sky, ground
    thickness = max(2, round(min(width, height) / 80))
    cv2.line(img, (0, horizon), (width, horizon), (0, 0, 0), thickness, cv2.LINE_AA)
    sun = (int(width * 0.88), int(height * 0.14))
    cv2.circle(img, sun, int(height * 0.08), (255, 235, 120), -1, cv2.LINE_AA)
    cv2.circle(img, sun, int(height * 0.08), (0, 0, 0), thickness, cv2.LINE_AA)
    return img


def _shaded_background(width: int, height: int, sky: RGB, ground: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    top, bottom = np.asarray(sky, float) * 1.1, np.asarray(ground, float) * 0.8
    img = np.clip(top * (1 - t) + bottom * t, 0, 255).repeat(width, axis=1).astype(np.uint8)
    hill = Part(0, 0, 1, 1, "ground")  # the painter takes the colour itself; the name is only a label
    _shaded_ellipse(img, (width * 0.15, height * 1.05), (width * 0.5, height * 0.45), 0.0, ground, hill)
    return img


def _soften(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 0.8)


@dataclass(frozen=True)
class Style:
    """How one drawing style paints parts and backgrounds, and finishes a frame."""

    ellipse: EllipsePainter
    background: Callable[[int, int, RGB, RGB], np.ndarray]
    finish: Callable[[np.ndarray], np.ndarray]


STYLES: dict[str, Style] = {
    "2d": Style(_flat_ellipse, _flat_background, lambda img: img),
    "3d": Style(_shaded_ellipse, _shaded_background, _soften),
}


def draw_face(img: np.ndarray, pose: Pose, character: Character, style: Style) -> None:
    """Paint one face onto `img` in place."""
    colours = _part_colours(character)
    for part in _face_parts(pose.mouth_open):
        centre = pose.to_image(part.x, part.y)
        axes = (part.ax * pose.rx, part.ay * pose.ry)
        style.ellipse(img, centre, axes, pose.roll_deg, colours[part.colour], part)


# --- audio -----------------------------------------------------------------------------------


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as src:
        data = np.frombuffer(src.readframes(src.getnframes()), dtype=np.int16)
        return data.astype(np.float32) / 32768.0, src.getframerate()


def _trim_silence(samples: np.ndarray, frame: int = AUDIO_RATE // 100) -> np.ndarray:
    """Cut leading and trailing near-silence (10 ms frames under 2 % of the loudest)."""
    count = len(samples) // frame
    rms = np.sqrt(np.mean(samples[: count * frame].reshape(count, frame) ** 2, axis=1))
    active = np.flatnonzero(rms > 0.02 * rms.max())
    return samples[active[0] * frame : (active[-1] + 1) * frame]


def speak(text: str, voice: str, workdir: Path) -> np.ndarray:
    """espeak-ng speech at AUDIO_RATE, trimmed of silence at both ends, peak SPEECH_PEAK."""
    out = workdir / "speech.wav"
    subprocess.run([require_tool("espeak-ng"), "-v", voice, "-s", "160", "-w", str(out), text], check=True)
    samples, rate = _read_wav(out)
    ratio = Fraction(AUDIO_RATE, rate)
    speech = _trim_silence(resample_poly(samples, ratio.numerator, ratio.denominator))
    return (speech * (SPEECH_PEAK / np.abs(speech).max())).astype(np.float32)


def music(duration_s: float, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Quiet background music: plucked pentatonic notes over a soft drone, peak `gain`."""
    n = round(duration_s * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    out = 0.3 * np.sin(2 * np.pi * 110.0 * t) + 0.15 * np.sin(2 * np.pi * 165.0 * t)
    scale = 220.0 * 2.0 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    note_len = int(0.4 * AUDIO_RATE)
    tail = np.arange(note_len) / AUDIO_RATE
    envelope = np.minimum(tail / 0.02, 1.0) * np.exp(-tail / 0.15)
    for start in range(0, n, note_len):
        pitch = rng.choice(scale)
        tone = sum(w * np.sin(2 * np.pi * pitch * k * tail) for k, w in ((1, 1.0), (2, 0.5), (3, 0.25)))
        end = min(n, start + note_len)
        out[start:end] += (envelope * tone)[: end - start]
    return (out * (gain / np.abs(out).max())).astype(np.float32)


def _loudness(track: np.ndarray, times: np.ndarray, window_s: float = 0.04) -> np.ndarray:
    """RMS of `track` in a window around each time, scaled so loud speech is about 1."""
    half = int(window_s * AUDIO_RATE / 2)
    centres = np.round(times * AUDIO_RATE).astype(int)
    rms = np.array([np.sqrt(np.mean(track[max(0, c - half) : c + half] ** 2)) for c in centres])
    peak = rms.max()
    return np.clip(rms / (0.6 * peak), 0.0, 1.0) if peak > 0 else rms


# --- scene -----------------------------------------------------------------------------------


def _shot_of(spec: VideoSpec, t: float) -> int:
    if spec.shots:
        return min(int(t * len(spec.shots) / spec.duration_s), len(spec.shots) - 1)
    return int(spec.cut_s is not None and t >= spec.cut_s)


def _placements(spec: VideoSpec, shot: int) -> list[Placement]:
    """The shot's placements, its main (speaking) face first."""
    if spec.shots:
        return list(spec.shots[shot])
    return [MAIN_FACES[shot]] + ([SECOND_FACE] if spec.second_face and shot == 0 else [])


def _pose(spec: VideoSpec, place: Placement, phase: np.ndarray, t: float, mouth_open: float) -> Pose:
    w, h = spec.width, spec.height
    return Pose(
        cx=place.x * w + 0.05 * w * math.sin(2 * math.pi * t / 9 + phase[0]),
        cy=place.y * h + 0.03 * h * math.sin(2 * math.pi * t / 6 + phase[1]),
        rx=0.17 * w * place.scale,
        ry=0.28 * h * place.scale,
        roll_deg=8.0 * math.sin(2 * math.pi * t / 7 + phase[2]),
        mouth_open=mouth_open,
    )


def _speaker(spec: VideoSpec, line: SpeechLine) -> str:
    return _placements(spec, _shot_of(spec, line.start_s))[0].character


@dataclass(frozen=True)
class _Soundtrack:
    mix: np.ndarray  # speech over music, the video's audio
    speech: np.ndarray  # speech alone, drives the mouths
    intervals: tuple[Interval, ...]  # in time order
    speakers: tuple[str, ...]  # face_id per interval


def _soundtrack(spec: VideoSpec, workdir: Path, rng: np.random.Generator) -> _Soundtrack:
    n = round(spec.duration_s * AUDIO_RATE)
    speech = np.zeros(n, dtype=np.float32)
    intervals: list[Interval] = []
    lines = sorted(spec.speech, key=lambda line: line.start_s)
    for line in lines:
        clip = speak(line.text, CHARACTERS[_speaker(spec, line)].voice, workdir)
        start = round(line.start_s * AUDIO_RATE)
        if start + len(clip) > n or (intervals and line.start_s < intervals[-1][1]):
            raise ValueError(f"speech line at {line.start_s} s overlaps another line or the video end")
        speech[start : start + len(clip)] = clip
        intervals.append((line.start_s, (start + len(clip)) / AUDIO_RATE))
    mix = np.clip(speech + music(spec.duration_s, spec.music_gain, rng), -1.0, 1.0)
    return _Soundtrack(mix, speech, tuple(intervals), tuple(_speaker(spec, line) for line in lines))


def _encode(path: Path, spec: VideoSpec, frames, audio_wav: Path | None, log: Path) -> None:
    """Pipe RGB frames into ffmpeg: H.264 with a fixed key-frame interval, AAC audio."""
    cmd = [require_tool("ffmpeg"), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    cmd += ["-s", f"{spec.width}x{spec.height}", "-r", str(spec.fps), "-i", "pipe:0"]
    if audio_wav is not None:
        cmd += ["-i", str(audio_wav), "-c:a", "aac", "-b:a", "64k"]
    k = str(spec.keyframe_interval)
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    cmd += ["-g", k, "-keyint_min", k, "-sc_threshold", "0", str(path)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        for frame in frames:
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed: {log.read_text(errors='replace').strip()[-300:]}")


def make_video(path: str | Path, spec: VideoSpec | None = None) -> SyntheticVideo:
    """Write a test video to `path` and return it with its truth."""
    spec = spec or VideoSpec()
    path = Path(path)
    style = STYLES[spec.style]
    rng = np.random.default_rng(spec.seed)
    n_frames = max(1, round(spec.duration_s * spec.fps))
    times = np.arange(n_frames) / spec.fps
    face_ids = sorted({p.character for shot in range(spec.n_shots) for p in _placements(spec, shot)})
    phases = {face: rng.uniform(0, 2 * math.pi, 3) for face in face_ids}
    eyes = {face: np.full((n_frames, 2, 2), np.nan) for face in face_ids}
    boxes = {face: np.full((n_frames, 4), np.nan) for face in face_ids}
    rolls = {face: np.full(n_frames, np.nan) for face in face_ids}
    backgrounds = [style.background(spec.width, spec.height, *bg) for bg in BACKGROUNDS]

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sound = _soundtrack(spec, workdir, rng) if spec.with_audio else None
        talk = _loudness(sound.speech, times) if sound else np.zeros(n_frames)
        audio_wav = None
        if sound is not None:
            audio_wav = workdir / "audio.wav"
            audio_wav.write_bytes(wav_bytes(sound.mix, AUDIO_RATE))

        def frames():
            for i, t in enumerate(times):
                shot = _shot_of(spec, t)
                img = backgrounds[shot % len(backgrounds)].copy()
                # Smaller faces first so the main face is drawn on top; only the main face talks.
                placements = _placements(spec, shot)
                for place in sorted(placements, key=lambda p: p.scale):
                    speaker = place is placements[0]
                    pose = _pose(spec, place, phases[place.character], t, talk[i] if speaker else 0.0)
                    draw_face(img, pose, CHARACTERS[place.character], style)
                    eyes[place.character][i] = [pose.to_image(-_EYE_X, _EYE_Y), pose.to_image(_EYE_X, _EYE_Y)]
                    boxes[place.character][i] = pose.box()
                    rolls[place.character][i] = pose.roll_deg
                yield style.finish(img)

        _encode(path, spec, frames(), audio_wav, workdir / "ffmpeg.log")

    shots = [_shot_of(spec, t) for t in times]
    cut_times = tuple(float(times[i]) for i in range(1, n_frames) if shots[i] != shots[i - 1])
    faces = (_face_truth(face, times, eyes[face], boxes[face], rolls[face], spec.fps) for face in face_ids)
    return SyntheticVideo(
        path=path,
        spec=spec,
        frame_times=times,
        faces=tuple(face for face in faces if face is not None),
        speech_intervals=sound.intervals if sound else (),
        speakers=sound.speakers if sound else (),
        cut_times=cut_times,
        key_indices=tuple(range(0, n_frames, spec.keyframe_interval)),
    )


def _face_truth(face: str, times, eyes, boxes, rolls, fps: int) -> FaceTruth | None:
    present = np.flatnonzero(~np.isnan(rolls))
    if len(present) == 0:
        return None
    start, end = float(times[present[0]]), float(times[present[-1]]) + 1.0 / fps
    return FaceTruth(face_id=face, start_s=start, end_s=end, eyes=eyes, boxes=boxes, rolls_deg=rolls)


def make_one_frame_video(path: str | Path, spec: VideoSpec | None = None) -> SyntheticVideo:
    """A video of a single frame and no audio."""
    spec = spec or VideoSpec()
    return make_video(path, replace(spec, duration_s=1.0 / spec.fps, cut_s=None, speech=(), with_audio=False))


# --- bad inputs ------------------------------------------------------------------------------


def write_zero_byte_file(path: str | Path) -> Path:
    """An empty file with a video name."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def _garble_after_header(data: bytearray, rng: np.random.Generator) -> None:
    """Keep the 'ftyp' box, replace everything after it: no readable container index."""
    header = int.from_bytes(data[:4], "big")
    data[header:] = rng.integers(0, 256, len(data) - header, dtype=np.uint8).tobytes()


def _garble_payload(data: bytearray, rng: np.random.Generator) -> None:
    """Keep the container intact, overwrite the second half of the media data: frames fail."""
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if data[offset + 4 : offset + 8] == b"mdat":
            start, end = offset + 8 + (size - 8) // 2, offset + size
            data[start:end] = rng.integers(0, 256, end - start, dtype=np.uint8).tobytes()
            return
        if size < 8:
            break
        offset += size
    raise ValueError("no mdat box found; is this an mp4?")


CORRUPTIONS: dict[str, Callable[[bytearray, np.random.Generator], None]] = {
    "header": _garble_after_header,
    "payload": _garble_payload,
}


def write_corrupt_file(path: str | Path, source: str | Path, kind: str, rng: np.random.Generator) -> Path:
    """Copy the mp4 `source` to `path` with the damage named by `kind` (a key of CORRUPTIONS)."""
    data = bytearray(Path(source).read_bytes())
    CORRUPTIONS[kind](data, rng)
    path = Path(path)
    path.write_bytes(bytes(data))
    return path

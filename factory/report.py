"""`factory report`: an HTML page with figures drawn from committed shards.

Generic figures for any dataset (counts per kind / split / status, a
histogram of every numeric top-level json field, a contact sheet), plus the
source papers' figures for the sample kinds that carry their fields
(``KIND_FIGURES``): clip-length histogram, style counts, faces per video,
gender and age shares for ``video_face``; style and partition counts and
head-angle histograms for ``render``; faces and voice seconds per character
and gender / age shares of characters for ``character`` (whose contact sheet
shows one character per row).
"""

from __future__ import annotations

import collections
import html
import io
import json
import os
from dataclasses import dataclass
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from factory.members import unpack  # noqa: E402
from factory.shards import iter_samples, read_index  # noqa: E402
from factory.storage import Location  # noqa: E402
from factory.summary import summarize  # noqa: E402

IMAGE_FIELDS = ("jpg", "png", "jpeg")
CHARACTER_ROW = 5  # contact-sheet cells per character: its 1-5 faces


@dataclass(frozen=True)
class ReportSettings:
    """How much the report draws."""

    thumbnails: int = 64
    thumb_px: int = 96
    max_histograms: int = 12


def _numeric_fields(json_texts: list[str | None]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = collections.defaultdict(list)
    for text in json_texts:
        if not text:
            continue
        try:
            meta = json.loads(text)
        except ValueError:
            continue
        for k, v in meta.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values[k].append(float(v))
    return dict(values)


def _save(fig, folder: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(folder, name), dpi=90)
    plt.close(fig)
    return name


def _bar(counts: dict[str, int], title: str, folder: str, name: str) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 3))
    keys = sorted(counts)
    ax.bar(keys, [counts[k] for k in keys], color="#4a7")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=30)
    return _save(fig, folder, name)


def _histogram(name: str, values: list[float], folder: str) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.hist(values, bins=min(30, max(5, len(set(values)))), color="#47a")
    ax.set_title(f"{name} (n={len(values)})")
    return _save(fig, folder, f"hist_{name}.png")


def _metas(json_texts: list[str | None], kind: str) -> list[dict]:
    metas = []
    for text in json_texts:
        try:
            meta = json.loads(text) if text else None
        except ValueError:
            continue
        if isinstance(meta, dict) and meta.get("kind") == kind:
            metas.append(meta)
    return metas


def _video_face_figures(metas: list[dict], folder: str) -> list[str]:
    """Method A's figures: voice clip lengths, styles, faces per video, gender and age shares."""
    figs = []
    clips = [m["audio"]["duration_s"] for m in metas if (m.get("audio") or {}).get("duration_s")]
    if clips:
        figs.append(_histogram("voice_clip_seconds", clips, folder))
    figs.append(_bar(collections.Counter(m.get("style", "?") for m in metas), "face tracks by style", folder, "video_styles.png"))
    per_video = collections.Counter(m.get("video_id") for m in metas)
    figs.append(_histogram("faces_per_video", list(map(float, per_video.values())), folder))
    for task in ("gender", "age_group"):
        labels = [((m.get("labels") or {}).get(task) or {}) for m in metas]
        names = [lab.get("label") if isinstance(lab, dict) else lab for lab in labels]
        counts = collections.Counter(n for n in names if n)
        if counts:
            figs.append(_bar(counts, f"tracks by {task}", folder, f"labels_{task}.png"))
    return figs


def _render_figures(metas: list[dict], folder: str) -> list[str]:
    """Method B's figures: shader styles, partitions, head angles."""
    figs = [
        _bar(collections.Counter(m.get("style", "?") for m in metas), "renders by style", folder, "render_styles.png"),
        _bar(collections.Counter(m.get("partition", "?") for m in metas), "renders by partition", folder, "render_partitions.png"),
    ]
    poses = [m["pose"] for m in metas if isinstance(m.get("pose"), list) and len(m["pose"]) == 20]
    for i, name in zip((17, 18, 19), ("yaw", "pitch", "roll")):
        if poses:
            figs.append(_histogram(f"head_{name}_deg", [p[i] for p in poses], folder))
    return figs


def _character_figures(metas: list[dict], folder: str) -> list[str]:
    """The Korean set's figures: faces and voice seconds per character, gender and age shares (figs. 2-3)."""
    figs = [
        _histogram("faces_per_character", [float(len(m.get("faces") or [])) for m in metas], folder),
        _histogram("audio_seconds_per_character", [float(m.get("audio_s") or 0.0) for m in metas], folder),
    ]
    for task in ("gender", "age_group"):
        counts = collections.Counter((m.get("labels") or {}).get(task) for m in metas)
        counts.pop(None, None)
        if counts:
            figs.append(_bar(counts, f"characters by {task}", folder, f"characters_{task}.png"))
    return figs


# Registry: sample kind -> the source paper's figures for it.
KIND_FIGURES: dict[str, Callable[[list[dict], str], list[str]]] = {
    "video_face": _video_face_figures,
    "render": _render_figures,
    "character": _character_figures,
}


def _sample_images(sample: dict) -> tuple[list[bytes], bool]:
    """The sample's main image, or all of a character's faces; and whether it is a character."""
    field = next((f for f in IMAGE_FIELDS if f in sample), None)
    if field is None:
        return [], False
    try:
        character = json.loads(sample.get("json") or b"{}").get("kind") == "character"
    except (ValueError, AttributeError):
        character = False
    unpacked = unpack(sample, {}) if character else {}  # faces.jpg -> face1.jpg..
    extra = [unpacked[f"face{n}.jpg"] for n in range(1, 5) if f"face{n}.jpg" in unpacked]
    return [sample[field], *extra], character


def contact_sheet(out: Location, settings: ReportSettings) -> Image.Image | None:
    """Tile the first image samples into one picture (None if there are none).

    Character samples are grouped: each character's faces fill a row of their own.
    """
    thumbs: list[Image.Image | None] = []  # None: an empty cell closing a character's row
    grouped = False
    for sample in iter_samples(out):
        images, character = _sample_images(sample)
        grouped = grouped or character
        for data in images:
            img = Image.open(io.BytesIO(data)).convert("RGBA")
            img.thumbnail((settings.thumb_px, settings.thumb_px))
            thumbs.append(img)
        if character:
            thumbs.extend([None] * (-len(thumbs) % CHARACTER_ROW))
        if len(thumbs) >= settings.thumbnails:
            break
    if not thumbs:
        return None
    cols = CHARACTER_ROW if grouped else int(np.ceil(np.sqrt(len(thumbs))))
    rows = int(np.ceil(len(thumbs) / cols))
    px = settings.thumb_px
    sheet = Image.new("RGBA", (cols * px, rows * px), (40, 40, 40, 255))
    for i, t in enumerate(thumbs):
        if t is None:
            continue
        sheet.alpha_composite(t, ((i % cols) * px + (px - t.width) // 2, (i // cols) * px + (px - t.height) // 2))
    return sheet


def write_report(out: Location, folder: str, settings: ReportSettings = ReportSettings()) -> str:
    """Draw the report of the dataset at ``out`` into ``folder``; returns the HTML path."""
    os.makedirs(folder, exist_ok=True)
    summary = summarize(out)
    index = read_index(out)
    status = index.column("status").to_pylist()
    figures = [
        _bar(collections.Counter(status), "rows by status", folder, "status.png"),
    ]
    if summary.kinds:
        figures.append(_bar(summary.kinds, "samples by kind", folder, "kinds.png"))
    if summary.splits:
        figures.append(_bar(summary.splits, "samples by split", folder, "splits.png"))
    ok_json = [j for j, s in zip(index.column("json").to_pylist(), status) if s == "ok"]
    for kind, draw in KIND_FIGURES.items():
        metas = _metas(ok_json, kind)
        if metas:
            figures.extend(draw(metas, folder))
    numeric = _numeric_fields(ok_json)
    for name in sorted(numeric)[: settings.max_histograms]:
        figures.append(_histogram(name, numeric[name], folder))
    sheet = contact_sheet(out, settings)
    if sheet is not None:
        sheet.save(os.path.join(folder, "contact_sheet.png"))
        figures.append("contact_sheet.png")
    errors = [(k, e) for k, e, s in zip(index.column("input_id").to_pylist(), index.column("error").to_pylist(), status) if s == "error"]
    page = [
        "<!doctype html><meta charset='utf-8'><title>factory report</title>",
        "<style>body{font-family:sans-serif;margin:2em} img{margin:.5em;border:1px solid #ccc}</style>",
        f"<h1>Dataset report</h1><pre>{html.escape(summary.to_text())}</pre>",
        "<h2>Figures</h2>",
        *[f"<img src='{html.escape(f)}' alt='{html.escape(f)}'>" for f in figures],
        f"<h2>Errors ({len(errors)})</h2><table>",
        *[f"<tr><td>{html.escape(k)}</td><td>{html.escape(e or '')}</td></tr>" for k, e in errors[:200]],
        "</table>",
    ]
    path = os.path.join(folder, "index.html")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(page))
    return path

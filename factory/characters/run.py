"""`factory characters`: a committed video dataset -> a dataset of character samples.

Reads every ``video_face`` sample, embeds its faces, groups the tracks into
characters (within each video, or across all with ``--scope all``), applies
the corrections CSV and writes one ``character`` sample per character through
:class:`ShardedWriter` (committed shards, index, dataset.json), plus
``tracks.parquet`` (track_key -> character_id, confidence) at the dataset root.

One process, no Ray: grouping needs every track of a scope at once and costs
milliseconds per track beside the embedding. A rerun with the same settings
is a no-op; a rerun with other settings or corrections needs a new --out
(its samples would silently mix with the old ones otherwise).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import logging
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from factory.characters.corrections import (
    Correction,
    apply_corrections,
    parse_corrections,
)
from factory.characters.embed import DEFAULT_EMBEDDING, Embedder, make_embedder
from factory.characters.grouping import (
    DEFAULT_THRESHOLD,
    TrackInfo,
    cannot_link,
    cluster,
    confidences,
    distances,
    renumber,
)
from factory.characters.samples import TrackSample, character_row
from factory.members import unpack
from factory.provenance import utc_now
from factory.dataset import DatasetError, check_owner, finalize, prepare
from factory.shards import iter_samples, make_key
from factory.storage import open_location

log = logging.getLogger(__name__)
PIPELINE = "characters"
TRACKS_PARQUET = "tracks.parquet"
SCOPES = ("video", "all")


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("a face image does not decode")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_tracks(data_url: str, embedder: Embedder) -> tuple[list[TrackSample], list[dict]]:
    """The video_face samples with their face embeddings, and one error row per unreadable track."""
    tracks, errors = [], []
    for sample in iter_samples(open_location(data_url)):
        try:
            meta = json.loads(sample.get("json") or b"{}")
            if meta.get("kind") != "video_face":
                continue
            members = unpack(sample, meta)  # faces.jpg / voice -> jpg, face1.jpg.., wav
            faces = [members[f] for f in ["jpg"] + [f"face{n}.jpg" for n in range(1, 10)] if f in members]
            if not faces:
                raise ValueError("no face image")
            track = TrackSample(sample["__key__"], meta, faces, members.get("wav"))
            embedded = embedder([_decode(f) for f in faces])
            norms = np.linalg.norm(embedded, axis=1, keepdims=True)
            track.face_embeddings = embedded / np.where(norms > 0, norms, 1.0)
            tracks.append(track)
        except (ValueError, KeyError, RuntimeError, cv2.error) as exc:  # a bad track is an error row; the rest goes on
            message = f"track {sample['__key__']}: {type(exc).__name__}: {exc}".splitlines()[0]
            errors.append({"__key__": make_key(sample["__key__"], "error"), "__error__": message, "__input__": "errors"})
    return tracks, errors


def group_tracks(
    tracks: list[TrackSample], threshold: float = DEFAULT_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (0.. in track order) and confidences of tracks already in one scope."""
    info = [TrackInfo(t.key, t.video_id, float(t.meta.get("start_s", 0.0)), float(t.meta.get("end_s", 0.0))) for t in tracks]
    emb = np.stack([f.face_embeddings.mean(0) for f in tracks]) if tracks else np.zeros((0, 1))
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    dist = distances(emb, cannot_link(info))
    labels = cluster(dist, threshold)
    return labels, confidences(dist, labels, threshold)


def _scopes(tracks: list[TrackSample], scope: str) -> dict[str, list[TrackSample]]:
    out: dict[str, list[TrackSample]] = collections.defaultdict(list)
    ordered = sorted(tracks, key=lambda t: (t.video_id, float(t.meta.get("start_s", 0.0)), t.key))
    for t in ordered:
        out["all" if scope == "all" else t.video_id].append(t)
    return dict(out)


def characters_of_scope(
    scope_id: str, tracks: list[TrackSample], threshold: float, corrections: list[Correction], embedding: dict[str, Any]
) -> tuple[list[dict], list[dict], set[int]]:
    """Character rows, tracks.parquet rows and the corrections' lines used, of one scope."""
    labels, conf = group_tracks(tracks, threshold)
    auto_ids = [make_key(scope_id, "c", f"{n:03d}") for n in range(int(labels.max()) + 1)] if len(labels) else []
    keys = [t.key for t in tracks]
    own = [c for c in corrections if c.subject in keys or c.subject in auto_ids]
    labels, names = apply_corrections(own, keys, labels, auto_ids)
    final = renumber(labels)
    names = {int(final[np.flatnonzero(labels == lab)[0]]): n for lab, n in names.items() if (labels == lab).any()}
    rows, table = [], []
    for c in range(int(final.max()) + 1 if len(final) else 0):
        members = [t for t, lab in zip(tracks, final) if lab == c]
        cid = make_key(scope_id, "c", f"{c:03d}")
        member_conf = [float(x) for x, lab in zip(conf, final) if lab == c]
        row = character_row(cid, scope_id, members, float(np.mean(member_conf)), names.get(c), embedding)
        rows.append(row)
        table += [
            {"track_key": t.key, "video_id": t.video_id, "character_id": cid, "confidence": x, "name": names.get(c)}
            for t, x in zip(members, member_conf)
        ]
    return rows, table, {c.line for c in own}


def _tracks_parquet(rows: list[dict]) -> bytes:
    schema = pa.schema([("track_key", pa.string()), ("video_id", pa.string()), ("character_id", pa.string()),
                        ("confidence", pa.float64()), ("name", pa.string())])  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def run_characters(
    data_url: str,
    out_url: str,
    embedding: str = DEFAULT_EMBEDDING,
    scope: str = "video",
    threshold: float = DEFAULT_THRESHOLD,
    corrections_text: str | None = None,
) -> dict:
    """Group the tracks of ``data_url`` into character samples under ``out_url``; returns dataset.json."""
    if scope not in SCOPES:
        raise ValueError(f"--scope must be one of {', '.join(SCOPES)}")
    corrections = parse_corrections(corrections_text) if corrections_text else []
    config = {
        "data": data_url, "embedding": embedding, "scope": scope, "threshold": float(threshold),
        "corrections_sha256": hashlib.sha256(corrections_text.encode()).hexdigest() if corrections_text else None,
    }  # fmt: skip
    started = utc_now()
    out = open_location(out_url)
    existing = check_owner(out, PIPELINE)
    if existing is not None:
        if existing.get("config") != config:
            raise DatasetError(
                f"{out.url} holds characters made with other settings or corrections ({existing.get('config')}); "
                "write this run to a new --out"
            )
        if existing.get("status") == "complete":
            log.info("%s is complete with these settings; nothing to do", out.url)
            return existing
    embedder = make_embedder(embedding)
    tracks, errors = read_tracks(data_url, embedder)
    record = {"name": embedder.name, "version": embedder.version}
    table: list[dict] = []
    by_scope: dict[str, list[dict]] = {}
    used: set[int] = set()
    for scope_id, members in _scopes(tracks, scope).items():
        by_scope[scope_id], scope_table, lines = characters_of_scope(scope_id, members, threshold, corrections, record)
        table += scope_table
        used |= lines
    unused = [c.line for c in corrections if c.line not in used]
    if unused:  # a typo must not pass silently
        raise ValueError(f"corrections line {unused[0]}: no track or character of this dataset is called that")
    state = prepare(out, PIPELINE, config)  # claimed only now: a bad CSV or embedding leaves OUT untouched
    with state, state.writer(out, writer_id=PIPELINE) as writer:  # the claim ends with the writer
        for scope_id, rows in by_scope.items():
            for row in rows:
                row.update({"__input__": scope_id, "__input_rows__": len(rows), "__split__": "all"})
                writer.write(row)
        for row in errors:
            row.update({"__input_rows__": len(errors), "__split__": "all"})
            writer.write(row)
    out.put_bytes(TRACKS_PARQUET, _tracks_parquet(table))
    # The embedding's name@version reaches dataset.json's models from the samples' json.
    return finalize(out, PIPELINE, config, inputs=[(scope_id, data_url) for scope_id in by_scope], started=started)


def add_characters_arguments(parser: argparse.ArgumentParser) -> None:
    """The `factory characters` flags."""
    parser.add_argument("--data", required=True, help="a committed `factory video` dataset (path or URL)")
    parser.add_argument("--out", required=True, help="output folder or URL for the character dataset")
    parser.add_argument("--embedding", default=DEFAULT_EMBEDDING, help="hue | classifier:NAME[@VERSION] (model store)")
    parser.add_argument("--scope", default="video", choices=SCOPES, help="group within each video, or across all")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="cosine distance that cuts the clusters")
    parser.add_argument("--corrections", help="CSV action,subject,target,name (merge / split / name), docs/CHARACTERS.md")


def run_characters_from_args(args: argparse.Namespace) -> int:
    """`factory characters` handler: run, print a one-line summary."""
    text = None
    if args.corrections:
        with open(args.corrections, encoding="utf-8") as fh:
            text = fh.read()
    info = run_characters(args.data, args.out, args.embedding, args.scope, args.threshold, text)
    counts = info.get("counts", {})
    print(f"{counts.get('samples', 0)} characters, {counts.get('errors', 0)} errors -> {args.out}")
    return 0

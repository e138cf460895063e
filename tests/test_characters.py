"""`factory characters`: real mined tracks of multi-shot synthetic videos grouped into characters."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from factory.characters.corrections import apply_corrections, parse_corrections
from factory.characters.embed import make_embedder
from factory.characters.grouping import (
    TrackInfo,
    adjusted_rand_index,
    cannot_link,
    cluster,
    confidences,
    distances,
)
from factory.characters.run import (
    TRACKS_PARQUET,
    group_tracks,
    read_tracks,
    run_characters,
)
from factory.cli import main
from factory.dataset import read_errors
from factory.members import unpack
from factory.pipelines.video import VideoConfig, run_video
from factory.report import _character_figures
from factory.shards import SequentialAllocator, ShardedWriter, iter_samples
from factory.storage import open_location
from factory.synthetic.video import Placement, SpeechLine, VideoSpec, make_video

SHOT_S = 4.0
# Two videos, three characters told apart by hair colour, each in several separate shots.
ORDERS = {
    "cast2d": ("blue", "green", "pink", "green", "pink", "blue"),
    "cast3d": ("pink", "blue", "pink", "blue", "blue", "pink"),
}
SPEECH = (SpeechLine(0.4, "Hello there, my name is Mimi and I live here."), SpeechLine(4.4, "Good morning everyone, we build a boat today."))


@pytest.fixture(scope="session")
def cast_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cast")
    videos = {}
    for n, (name, order) in enumerate(ORDERS.items()):
        spec = VideoSpec(
            style=name[-2:], duration_s=SHOT_S * len(order), shots=tuple((Placement(c, 0.5, 0.54, 1.0),) for c in order),
            speech=SPEECH, seed=20 + n,
        )  # fmt: skip
        videos[name] = make_video(folder / f"{name}.mp4", spec)
    return videos


@pytest.fixture(scope="session")
def cast_dataset(cast_videos, tmp_path_factory, ray_local) -> str:
    """The real video pipeline (Ray, MediaPipe, VAD) over both videos."""
    out = str(tmp_path_factory.mktemp("cast-out") / "video")
    run_video([str(v.path) for v in cast_videos.values()], out, VideoConfig(style_filter="any"))
    return out


def _truth(track, videos) -> str:
    """The character drawn in the shot that holds the track's middle."""
    order = next(ORDERS[name] for name, v in videos.items() if track.video_id.startswith(name))
    middle = (track.meta["start_s"] + track.meta["end_s"]) / 2
    return order[min(int(middle / SHOT_S), len(order) - 1)]


def test_hue_grouping_matches_the_drawn_characters(cast_dataset, cast_videos):
    tracks, errors = read_tracks(cast_dataset, make_embedder("hue"))
    assert not errors and len(tracks) >= 10
    for video_id in {t.video_id for t in tracks}:
        members = [t for t in tracks if t.video_id == video_id]
        labels, conf = group_tracks(members)
        ari = adjusted_rand_index([_truth(t, cast_videos) for t in members], labels)
        print(f"hue ARI {video_id}: {ari:.3f}, confidence {conf.min():.2f}..{conf.max():.2f}")
        assert ari >= 0.9
        assert ((0 <= conf) & (conf <= 1)).all()


def test_cannot_link_keeps_overlapping_tracks_apart():
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    tracks = [TrackInfo("v_t_000", "v", 0, 3), TrackInfo("v_t_001", "v", 2, 5), TrackInfo("w_t_000", "w", 0, 3)]
    forbidden = cannot_link(tracks)
    assert forbidden[0, 1] and not forbidden[0, 2]
    labels = cluster(distances(emb, forbidden), threshold=1.5)
    assert labels[0] != labels[1] and labels[2] in (labels[0], labels[1])
    assert cluster(distances(emb), threshold=0.2).tolist() == [0, 0, 0]
    conf = confidences(distances(np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])), np.array([0, 0, 1]))
    assert conf[0] > 0.8 and conf[2] == 1.0


def test_adjusted_rand_index():
    assert adjusted_rand_index("aabb", [1, 1, 0, 0]) == 1.0
    assert adjusted_rand_index("aabb", [0, 1, 0, 1]) < 0


def test_corrections_merge_split_and_name():
    keys = ["v_t_000", "v_t_001", "v_t_002", "v_t_003"]
    text = "action,subject,target,name\nmerge,v_c_001,v_t_000,\nsplit,v_t_003,,Rin\nname,v_t_001,,Mimi\n"
    labels, names = apply_corrections(parse_corrections(text), keys, np.array([0, 1, 2, 2]), ["v_c_000", "v_c_001", "v_c_002"])
    assert labels[0] == labels[1] and labels[2] != labels[3] and len(set(labels.tolist())) == 3
    assert names == {int(labels[0]): "Mimi", int(labels[3]): "Rin"}
    with pytest.raises(ValueError, match="line 2"):
        apply_corrections(parse_corrections("action,subject,target,name\nmerge,nope,v_t_000,\n"), keys, np.zeros(4, int), ["v_c_000"])
    with pytest.raises(ValueError, match="header"):
        parse_corrections("a,b\n")


def _characters(url: str) -> dict[str, dict]:
    return {s["__key__"]: s for s in iter_samples(open_location(url)) if "json" in s}


def test_cli_writes_character_samples_resumes_and_applies_corrections(cast_dataset, tmp_path, capsys):
    out = str(tmp_path / "chars")
    assert main(["characters", "--data", cast_dataset, "--out", out]) == 0
    samples = _characters(out)
    metas = {k: json.loads(s["json"]) for k, s in samples.items()}
    assert 4 <= len(samples) <= 7  # 3 + 2 drawn characters, give or take a split
    for key, meta in metas.items():
        sample = unpack(samples[key], meta)  # faces.jpg / voice -> the files json names
        assert set(samples[key]) == {"__key__", "__shard__", "jpg", "faces.jpg", "voice", "json"}
        assert key.startswith(meta["scope"]) and "_c_" in key and meta["kind"] == "character"
        assert 1 <= len(meta["faces"]) <= 5 and all(f["file"] in sample for f in meta["faces"])
        assert meta["faces"][0]["file"] == "jpg" and meta["n_tracks"] == len(meta["tracks"])
        assert len({f["track_key"] for f in meta["faces"]}) == min(len(meta["faces"]), meta["n_tracks"])
        assert len(meta["voices"]) <= 3 and all(3 <= v["duration_s"] <= 19 and v["file"] in sample for v in meta["voices"])
        assert meta["audio_s"] == pytest.approx(sum(v["duration_s"] for v in meta["voices"]), abs=0.01)
        assert meta["embedding"]["name"] == "hue" and meta["name"] is None and 0 <= meta["confidence"] <= 1
    assert any(m["voices"] for m in metas.values())
    table = pq.read_table(f"{out}/{TRACKS_PARQUET}").to_pylist()
    assert sorted(r["track_key"] for r in table) == sorted(t for m in metas.values() for t in m["tracks"])
    dataset = json.loads((tmp_path / "chars" / "dataset.json").read_text())
    assert dataset["status"] == "complete" and dataset["counts"]["per_kind"] == {"character": len(samples)}

    assert main(["report", "--data", out, "--out", str(tmp_path / "report")]) == 0
    for figure in ("hist_faces_per_character.png", "hist_audio_seconds_per_character.png"):
        assert (tmp_path / "report" / figure).stat().st_size > 0
    sheet = Image.open(tmp_path / "report" / "contact_sheet.png")
    assert sheet.size == (5 * 96, len(samples) * 96)  # one row per character

    shards = sorted((tmp_path / "chars" / "shards").iterdir())
    assert main(["characters", "--data", cast_dataset, "--out", out]) == 0  # rerun: nothing new
    assert sorted((tmp_path / "chars" / "shards").iterdir()) == shards

    # Corrections: merge the first two characters of a video, split one track out, name it.
    first = min(k for k, m in metas.items() if len(m["tracks"]) >= 2)
    scope = metas[first]["scope"]
    other = min(k for k, m in metas.items() if m["scope"] == scope and k != first)
    moved = metas[first]["tracks"][-1]
    csv = tmp_path / "fix.csv"
    csv.write_text(f"action,subject,target,name\nmerge,{other},{first},\nsplit,{moved},,Rin\n")
    assert main(["characters", "--data", cast_dataset, "--out", out, "--corrections", str(csv)]) == 1
    assert "new --out" in capsys.readouterr().err  # other settings never mix into an old OUT
    typo = tmp_path / "typo.csv"
    typo.write_text("action,subject,target,name\nname,nobody_t_000,,Rin\n")
    assert main(["characters", "--data", cast_dataset, "--out", str(tmp_path / "typo"), "--corrections", str(typo)]) == 1
    assert "line 2" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    fixed = str(tmp_path / "fixed")
    assert main(["characters", "--data", cast_dataset, "--out", fixed, "--corrections", str(csv)]) == 0
    after = {k: json.loads(s["json"]) for k, s in _characters(fixed).items()}
    by_track = {t: m for m in after.values() for t in m["tracks"]}
    kept = [t for t in metas[first]["tracks"] if t != moved]
    assert set(kept + metas[other]["tracks"]) == set(by_track[kept[0]]["tracks"])
    assert by_track[moved]["tracks"] == [moved] and by_track[moved]["name"] == "Rin"
    assert len([m for m in after.values() if m["scope"] == scope]) == len([m for m in metas.values() if m["scope"] == scope])


def test_video_cli_groups_characters_at_its_end(cast_videos, tmp_path, ray_local):
    out, chars = str(tmp_path / "video"), str(tmp_path / "chars")
    video = cast_videos["cast3d"].path
    assert main(["video", "--input", str(video), "--out", out, "--style", "any", "--characters", chars]) == 0
    metas = [json.loads(s["json"]) for s in _characters(chars).values()]
    assert len(metas) == len(set(ORDERS["cast3d"])) and all(m["kind"] == "character" for m in metas)


def test_report_shares_characters_by_gender_and_age(tmp_path):
    metas = [{"faces": [{}], "audio_s": 4.0, "labels": {"gender": g, "age_group": "20+"}} for g in ("male", "female", "female")]
    metas.append({"faces": [{}, {}], "audio_s": 0.0})  # unlabelled: counted in no share
    figures = _character_figures(metas, str(tmp_path))
    assert {"characters_gender.png", "characters_age_group.png"} <= set(figures)
    assert all((tmp_path / f).stat().st_size > 0 for f in figures)


def test_scope_all_groups_across_videos(cast_dataset, cast_videos, tmp_path):
    out = str(tmp_path / "all")
    info = run_characters(cast_dataset, out, scope="all")
    metas = [json.loads(s["json"]) for s in _characters(out).values()]
    assert all(m["character_id"].startswith("all_c_") and m["scope"] == "all" for m in metas)
    tracks, _ = read_tracks(cast_dataset, make_embedder("hue"))
    truth = {t.key: _truth(t, cast_videos) for t in tracks}
    labels = {t: m["character_id"] for m in metas for t in m["tracks"]}
    ari = adjusted_rand_index([truth[k] for k in truth], [labels[k] for k in truth])
    print(f"hue ARI across both videos (2D and 3D): {ari:.3f}, {len(metas)} characters")
    assert info["counts"]["samples"] == len(metas) and ari >= 0.9
    assert any(len(m["video_ids"]) == 2 for m in metas)


def test_an_unreadable_track_is_one_error_row(cast_dataset, tmp_path):
    good = next(s for s in iter_samples(open_location(cast_dataset)) if "json" in s)
    bad = {"__key__": "broken_t_000", "json": json.loads(good["json"]) | {"video_id": "broken"}, "jpg": b"not a jpeg"}
    data = open_location(str(tmp_path / "video"))
    with ShardedWriter(data, SequentialAllocator()) as writer:
        for row in (bad, {k: v for k, v in good.items() if k != "__shard__"}):
            row.update({"__input__": row["__key__"], "__input_rows__": 1, "__split__": "all"})
            writer.write(row)
    info = run_characters(data.url, str(tmp_path / "chars"))
    errors = read_errors(open_location(str(tmp_path / "chars"))).to_pylist()
    assert info["counts"]["errors"] == 1 and "broken_t_000" in errors[0]["error"]
    assert info["counts"]["per_kind"] == {"character": 1}


def test_characters_export_as_gochiusa_and_korean_av(cast_dataset, tmp_path):
    """The whole chain: mined tracks -> characters -> the papers' folder layouts."""
    from factory.export.run import export

    chars = str(tmp_path / "chars")
    assert main(["characters", "--data", cast_dataset, "--out", chars]) == 0
    metas = [json.loads(s["json"]) for s in _characters(chars).values()]
    faces = sum(len(m["faces"]) for m in metas)
    gochiusa = export(chars, "gochiusa", str(tmp_path / "gochiusa"))
    names = [p.name for p in (tmp_path / "gochiusa").rglob("*.png")]
    assert len(names) == faces and gochiusa["files"] >= faces
    assert all(re.fullmatch(r".+-[kp]-\d+-\d+\.png", n) for n in names)
    export(chars, "korean-av", str(tmp_path / "korean-av"))
    folders = [p for p in (tmp_path / "korean-av").iterdir() if p.is_dir()]
    assert len(folders) == len(metas)

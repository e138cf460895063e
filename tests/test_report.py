"""The report draws the papers' figures for the kinds that carry their fields."""

from __future__ import annotations

from factory.report import write_report
from factory.shards import SequentialAllocator, ShardedWriter
from factory.storage import open_location


def _rows():
    for i in range(6):
        yield {
            "__key__": f"vid{i % 2}_t_{i:03d}", "__input__": f"vid{i % 2}", "__input_rows__": 3, "__split__": "all",
            "json": {"kind": "video_face", "video_id": f"vid{i % 2}", "style": "3d", "audio": {"duration_s": 3.0 + i},
                     "labels": {"gender": {"label": ["male", "female", "child"][i % 3]}}},
        }
    for i in range(4):
        pose = [0.0] * 17 + [float(5 * i), -2.0, 1.0]
        yield {
            "__key__": f"model_{i:04d}", "__input__": "model", "__input_rows__": 4, "__split__": "train",
            "json": {"kind": "render", "style": ["toon", "cel"][i % 2], "partition": "rotated", "pose": pose},
        }


def test_kind_figures_are_drawn(tmp_path):
    out = open_location(str(tmp_path / "ds"))
    with ShardedWriter(out, SequentialAllocator()) as writer:
        writer.write_all(_rows())
    write_report(out, str(tmp_path / "rep"))
    page = (tmp_path / "rep" / "index.html").read_text()
    for figure in ("hist_voice_clip_seconds.png", "video_styles.png", "hist_faces_per_video.png", "labels_gender.png",
                   "render_styles.png", "render_partitions.png", "hist_head_yaw_deg.png"):
        assert (tmp_path / "rep" / figure).stat().st_size > 1000, figure
        assert figure in page
    assert not (tmp_path / "rep" / "labels_age_group.png").exists()  # no age labels: no figure

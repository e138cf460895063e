"""Real MMD models in real bpy: Gene turns its head with its labels; every file renders or fails cleanly.

Gene (../shared/realdata/mmd/gene, CC BY 4.0; PMX 2.0, 224 bones, 219 listed out of hierarchy
order) is imported once for the module (`gene`, Workbench at 128 px) and
shared by every test that only poses and renders it; a test that needs
other settings runs its own job in a Blender child process, so the shared
scene survives. The babylon-mmd test files have no head bone: each must end
as one clear error row.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("bpy")

from actors.blender import BlenderRenderer, RendererConfig  # noqa: E402
from factory.pipelines.render import model_inputs  # noqa: E402
from factory.render.jobs import RenderSettings  # noqa: E402
from factory.render.sampling import SamplingConfig  # noqa: E402
from factory.render.scene import ModelScene, SceneError, find_head_bones  # noqa: E402
from factory.sources.models import read_model  # noqa: E402
from tests.head_pose import landmarks, rigid_outside, yaw_sign_agreement  # noqa: E402

pytestmark = pytest.mark.slow
from tests.realdata import GENE, MMD  # noqa: E402
FAST = RenderSettings(engine="workbench", samples=8, resolution=128)


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.int16)


@pytest.fixture(scope="module")
def gene():
    """Gene imported once (Workbench, 128 px) for every test of this module that poses it."""
    if not GENE.exists():
        pytest.skip(f"real MMD model not found at {GENE} (../shared/realdata)")
    scene = ModelScene.from_file(GENE, FAST)
    yield scene
    scene.close()


# -- bones by identity ---------------------------------------------------------------
def test_gene_bones_meet_blender_by_name(gene):
    model = gene.model
    pose_bones = gene.arm_obj.pose.bones
    out_of_place = sum(pose_bones[i].name != name for i, name in enumerate(gene.bone_names))
    assert out_of_place >= 200  # Blender's hierarchy order is not the file's (219 of 224 on Gene)
    assert len(set(gene.bone_names)) == len(model.bones) == len(pose_bones)
    assert (model.bones[gene.neck].name, model.bones[gene.head].name) == ("首", "頭")
    for i, bone in enumerate(model.bones):
        blender = gene.arm_obj.data.bones[gene.bone_names[i]]
        assert (blender.parent.name if blender.parent else None) == (
            gene.bone_names[bone.parent] if bone.parent >= 0 else None), bone.name


def test_gene_yaw_turns_the_neck_only(gene):
    gene.pose({})
    rest = gene.posed_positions().copy()
    gene.pose({}, yaw=20, pitch=10)
    moved = gene.posed_positions()
    turned = [b.name for b in gene.arm_obj.pose.bones if b.rotation_quaternion.angle > 1e-4]
    assert turned == [gene.bone_names[gene.neck]]
    still = rigid_outside(gene)  # legs, arms, body: skinned to bones outside the neck's subtree
    assert len(still) > 10_000 and np.abs(moved[still] - rest[still]).max() < 1e-5
    assert np.abs(moved[gene.face_indices] - rest[gene.face_indices]).max() > 0.02


# -- yaw +/-20: face pixels change, face_bbox moves with it, the body stays ---------
def test_gene_yaw_turns_the_face_in_the_render(gene):
    gene.pose({})
    frontal, box, head = rgba(gene.render()), gene.face_bbox(), gene.head_bbox()
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    centre = (box[0] + box[2]) / 2
    for yaw in (-20, 20):
        gene.pose({}, yaw=yaw)
        changed = (np.abs(rgba(gene.render()) - frontal) > 24).any(axis=2)
        assert changed[y0:y1, x0:x1].mean() > 0.3, yaw  # the face itself changes
        assert changed[int(head[3]) + 6:].mean() < 0.005, yaw  # below the chin (collar, body) hardly a pixel
        moved = (gene.face_bbox()[0] + gene.face_bbox()[2]) / 2 - centre
        assert np.sign(moved) == np.sign(yaw) and abs(moved) > 3, yaw  # opposite ways for -20 and +20


def test_gene_projected_landmarks_agree_with_the_labelled_yaw(gene):
    """Nose vs irises in the posed mesh: the sign of the label on >= 95 % of rotated samples, |yaw| >= 8."""
    agree, total = yaw_sign_agreement(gene, 60)
    print(f"Gene: projected nose/irises agree with the yaw label on {agree}/{total}")
    assert total == 60 and agree / total >= 0.95


# -- face_bbox is the face, head_bbox the head ---------------------------------------
def test_gene_face_bbox_is_brows_to_chin_between_the_ears(gene):
    gene.pose({})
    face, head = gene.face_bbox(), gene.head_bbox()
    marks = landmarks(gene)
    irises = [gene.bbox_of(marks[side]) for side in ("left", "right")]
    top_iris, bottom_iris = min(b[1] for b in irises), max(b[3] for b in irises)
    height = face[3] - face[1]
    assert head[0] <= face[0] and face[2] <= head[2] and head[1] <= face[1] and face[3] <= head[3]
    assert face[1] - head[1] > 0.3 * (head[3] - head[1])  # the fringe and the top of the head are out
    assert abs(face[3] - head[3]) < 2  # both end at the chin
    assert 0 < top_iris - face[1] < 0.25 * height  # the top is the brows, just above the eyes
    assert face[0] < min(b[0] for b in irises) and max(b[2] for b in irises) < face[2]
    assert bottom_iris < face[1] + 0.6 * height  # eyes in the upper part, mouth and chin below
    assert 0.8 < (face[2] - face[0]) / height < 1.25
    hair = [i for i, m in enumerate(gene.model.materials) if "髪" in m.name]
    assert hair and not np.isin(gene.face_indices, _material_vertex_set(gene.model, hair)).any()


def _material_vertex_set(model, materials: list[int]) -> np.ndarray:
    starts = np.r_[0, np.cumsum([m.index_count // 3 for m in model.materials])]
    return np.unique(np.concatenate([model.faces[starts[i]:starts[i + 1]].ravel() for i in materials]))


# -- every real PMX renders or is one clear error row --------------------------------
def test_every_real_pmx_renders_or_is_one_clear_error_row(tmp_path):
    if not MMD.exists():
        pytest.skip(f"real MMD models not found at {MMD} (../shared/realdata)")
    sampling = SamplingConfig(images_per_model=2, frontal_fraction=0.5)
    settings = RenderSettings(engine="workbench", samples=1, resolution=64)
    items = model_inputs(str(MMD), sampling)
    assert len(items) >= 10
    renderer = BlenderRenderer(RendererConfig(sampling, settings))
    try:
        results = {item.meta["model_file"]: renderer(dataclasses.asdict(item)) for item in items}
    finally:
        renderer.process.stop()
    for name, rows in results.items():
        if name.startswith("gene/"):
            assert len(rows) == 2 and all("png" in row for row in rows), name
            for row in rows:
                meta = json.loads(row["json"])
                for key in ("face_bbox", "head_bbox"):
                    x0, y0, x1, y1 = meta[key]
                    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64, (name, key)
        else:  # babylon-mmd test files: no head bone
            (row,) = rows
            message = row["__error__"]
            assert "SceneError: no neck (首) / head (頭) bone" in message and "\n" not in message, name


def test_babylon_files_are_refused_for_want_of_a_head_bone():
    files = sorted((MMD / "babylon-mmd-tests").glob("*.pmx"))
    if not files:
        pytest.skip("babylon-mmd test files not found (../shared/realdata)")
    for path in files:  # read fine, refused before any Blender work
        with pytest.raises(SceneError, match="no neck"):
            find_head_bones(read_model(path))

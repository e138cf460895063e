"""factory/render/scene.py with real bpy renders: import, morphs, pose, bbox, alpha, styles, MediaPipe."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("bpy")

from actors.blender import image_rows  # noqa: E402
from factory.render import scene as scene_mod  # noqa: E402
from factory.render.jobs import ModelRender, RenderedImage, RenderJob, RenderSettings  # noqa: E402
from factory.render.sampling import STYLES, SamplingConfig, sample_pose  # noqa: E402
from factory.render.scene import (  # noqa: E402
    ModelScene,
    SceneError,
    blender_bone_names,
    expand_morphs,
    find_head_bones,
)
from factory.render.styles import STYLE_REGISTRY  # noqa: E402
from factory.synthetic.character import (  # noqa: E402
    FILE_BONE_ORDER,
    GROUP_MORPH,
    build_character,
    random_character,
    write_character,
)
from tests.head_pose import rigid_outside, yaw_sign_agreement  # noqa: E402

pytestmark = pytest.mark.slow
FAST = RenderSettings(engine="workbench", samples=8)


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture(scope="module")
def character():
    return build_character()


@pytest.fixture(scope="module")
def staged(character, tmp_path_factory):
    """The default character imported once (Workbench), shared by the tests of this module."""
    path = write_character(character, tmp_path_factory.mktemp("model"))
    scene = ModelScene.from_file(path, FAST)
    yield scene
    scene.close()


def _morph(character, name: str) -> int:
    return character.model.morph_index(name)


def test_style_registry_matches_sampling_styles():
    assert set(STYLE_REGISTRY) == set(STYLES)
    assert set(scene_mod.ENGINES) == {"cycles", "eevee", "workbench"}


def test_import_builds_mesh_armature_shape_keys_and_materials(staged, character):
    model = character.model
    assert len(staged.mesh_obj.data.vertices) == len(model.vertices)
    assert len(staged.mesh_obj.data.polygons) == len(model.faces)
    assert len(staged.arm_obj.data.bones) == len(model.bones)
    vertex_morphs = sum(m.kind.name == "VERTEX" for m in model.morphs)
    assert len(staged.mesh_obj.data.shape_keys.key_blocks) == vertex_morphs + 1  # + Basis
    assert staged.mesh_obj.modifiers[0].type == "ARMATURE"
    assert len(staged.mesh_obj.data.materials) == len(model.materials)
    assert staged.warnings == []
    neck, head = find_head_bones(model)
    assert (model.bones[neck].name, model.bones[head].name) == ("首", "頭")


def test_a_morph_changes_its_region_and_not_the_background(staged, character):
    staged.pose({})
    neutral = rgba(staged.render())
    for morph, region in (("あ", "mouth"), ("まばたき", "eyes")):
        staged.pose({})
        rest = staged.bbox_of(character.regions[region])
        staged.pose({_morph(character, morph): 1.0})
        moved = staged.bbox_of(character.regions[region])
        box = [min(rest[0], moved[0]), min(rest[1], moved[1]), max(rest[2], moved[2]), max(rest[3], moved[3])]
        changed = (np.abs(rgba(staged.render()).astype(int) - neutral).max(axis=2) > 24)
        ys, xs = np.nonzero(changed)
        assert len(ys) > 40, morph
        margin = 4
        assert xs.min() >= box[0] - margin and xs.max() <= box[2] + margin, morph
        assert ys.min() >= box[1] - margin and ys.max() <= box[3] + margin, morph
        assert not changed[neutral[..., 3] == 0].any(), f"{morph} changed the background"


def test_yaw_shifts_face_bbox_in_opposite_directions(staged):
    centres = {}
    for yaw in (-20, 0, 20):
        staged.pose({}, yaw=yaw)
        x0, _, x1, _ = staged.face_bbox()
        centres[yaw] = (x0 + x1) / 2
    assert centres[20] > centres[0] + 5 and centres[-20] < centres[0] - 5


def test_bones_are_listed_out_of_hierarchy_order_and_met_by_name(staged, character):
    """The synthetic file lists children before parents; Blender's pose list differs, names pair them."""
    model = character.model
    assert [b.name for b in model.bones] == list(FILE_BONE_ORDER)
    assert any(b.parent > i for i, b in enumerate(model.bones))  # a child before its parent
    neck, _ = find_head_bones(model)
    pose_bones = staged.arm_obj.pose.bones
    assert pose_bones[neck].name != staged.bone_names[neck]  # pairing by position would turn another bone
    assert staged.bone_names == [b.name for b in model.bones] == blender_bone_names(model)
    for i, bone in enumerate(model.bones):
        blender = staged.arm_obj.data.bones[staged.bone_names[i]]
        parent = blender.parent.name if blender.parent else None
        assert parent == (staged.bone_names[bone.parent] if bone.parent >= 0 else None), bone.name
    groups = {g.index: g.name for g in staged.mesh_obj.vertex_groups if g.name in staged.bone_names}
    mesh = staged.mesh_obj.data
    for region in ("mouth", "eye_left", "neck"):  # each vertex's bone groups name the bones its PMX weights name
        for i in character.regions[region][:20]:
            wanted = {staged.bone_names[b] for b, w in zip(model.vertices.bone_indices[i],
                                                           model.vertices.bone_weights[i]) if w > 0}
            assert {groups[g.group] for g in mesh.vertices[int(i)].groups if g.group in groups} == wanted, region


def test_yaw_poses_the_neck_only_and_leaves_the_body(staged, character):
    staged.pose({})
    rest = staged.posed_positions().copy()
    staged.pose({}, yaw=20)
    moved = staged.posed_positions()
    neck_name = staged.bone_names[staged.neck]
    for pose_bone in staged.arm_obj.pose.bones:
        turned = pose_bone.rotation_quaternion.angle > 1e-4
        assert turned == (pose_bone.name == neck_name), pose_bone.name
    still = rigid_outside(staged)
    assert len(still) > 100 and np.abs(moved[still] - rest[still]).max() < 1e-5  # the body stays
    face = staged.face_indices
    assert np.abs(moved[face] - rest[face]).max() > 0.02  # the face turns (metres)


def test_yaw_changes_face_pixels(staged):
    staged.pose({})
    frontal, box = rgba(staged.render()).astype(int), staged.face_bbox()
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    for yaw in (-20, 20):
        staged.pose({}, yaw=yaw)
        changed = (np.abs(rgba(staged.render()).astype(int) - frontal) > 24).any(axis=2)
        assert changed[y0:y1, x0:x1].mean() > 0.15, yaw


def test_projected_landmarks_agree_with_the_labelled_yaw(staged):
    """Nose vs eyes in the posed mesh: the sign of the labelled yaw on >= 95 % of rotated samples, |yaw| >= 8."""
    agree, total = yaw_sign_agreement(staged, 120)
    print(f"synthetic: projected nose/eyes agree with the yaw label on {agree}/{total}")
    assert total == 120 and agree / total >= 0.95


def test_bone_morph_turns_the_head_not_the_body(staged, character):
    staged.pose({})
    rest = staged.posed_positions().copy()
    staged.pose({_morph(character, "うなずき"): 1.0})  # on 頭, listed first in the file
    moved = staged.posed_positions()
    body = character.regions["body"]
    assert np.abs(moved[body] - rest[body]).max() < 1e-5
    assert np.abs(moved[character.regions["mouth"]] - rest[character.regions["mouth"]]).max() > 0.01


def test_face_bbox_is_brows_to_chin_and_head_bbox_holds_it(staged, character):
    staged.pose({})
    face, head = staged.face_bbox(), staged.head_bbox()
    assert head[0] <= face[0] and head[1] < face[1] - 5 and face[2] <= head[2] and face[3] <= head[3] + 0.5
    brows, mouth = staged.bbox_of(character.regions["brows"]), staged.bbox_of(character.regions["mouth"])
    eyes, hair = staged.bbox_of(character.regions["eyes"]), staged.bbox_of(character.regions["hair"])
    assert brows[1] - 3 <= face[1] <= brows[3]  # the top sits on the brows
    assert face[1] < eyes[1] and eyes[3] < mouth[1] < face[3] and mouth[3] < face[3]
    assert face[0] < eyes[0] and eyes[2] < face[2]
    assert hair[1] < face[1] - 20  # the fringe is above it
    assert not set(character.regions["hair"]) & set(staged.face_indices)


def test_projection_matches_blender(staged):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    staged.pose({}, yaw=12, pitch=-7, roll=5)
    points = staged.posed_positions()[staged.face_indices[::7]]
    expected = np.array([world_to_camera_view(staged.scene, staged.camera, Vector(p))[:2] for p in points])
    size = staged.settings.resolution
    expected = np.stack([expected[:, 0] * size, (1 - expected[:, 1]) * size], axis=1)
    assert np.abs(staged.project(points) - expected).max() < 1e-3


def _odd_bone_names(character):
    """The character plus bones whose names repeat, are empty, too long or hold a control character."""
    long = "髪" * 30  # 90 UTF-8 bytes: past Blender's 63
    names = ["リボン", "リボン", "", " ", "x#4", long, long + "a", "\x00ctl"]
    base = character.model.bones[0]
    bones = tuple(dataclasses.replace(base, name=n, name_en="", parent=-1) for n in names)
    return dataclasses.replace(character.model, bones=character.model.bones + bones)


def test_blender_bone_names_are_unique_and_stable(character):
    model = _odd_bone_names(character)
    got = blender_bone_names(model)
    assert got == blender_bone_names(model)  # stable
    assert len(set(got)) == len(got) and all(0 < len(n.encode()) <= 63 and "\x00" not in n for n in got)
    assert got[:len(character.model.bones)] == [b.name for b in character.model.bones]  # unique names kept
    n = len(character.model.bones)
    assert got[n:n + 4] == [f"リボン#{n}", f"リボン#{n + 1}", f"bone#{n + 2}", f"bone#{n + 3}"]
    assert got[n + 4] == "x#4" and got[n + 5] != got[n + 6] and got[n + 7] == "_ctl"


def test_image_rows_carry_face_and_head_boxes():
    sample = sample_pose(1, 0, ["mouth_a"], SamplingConfig())
    result = ModelRender("m", {"mouth_a": 3}, [], [RenderedImage(sample, b"png", [1.0, 2.0, 3.0, 4.0],
                                                                 [0.5, 1.0, 3.5, 4.25])])
    item = {"input_id": "m_1", "split": "train", "meta": {"model_file": "m.pmx"}}
    (row,) = image_rows(item, result, FAST)
    meta = json.loads(row["json"])
    assert meta["face_bbox"] == [1.0, 2.0, 3.0, 4.0] and meta["head_bbox"] == [0.5, 1.0, 3.5, 4.25]


def test_pitch_and_roll_move_the_face(staged):
    staged.pose({})
    x0, y0, x1, y1 = staged.face_bbox()
    staged.pose({}, pitch=20)
    assert staged.face_bbox()[3] < y1 - 2  # looking up lifts the chin
    staged.pose({}, roll=20)
    assert staged.face_bbox() != pytest.approx([x0, y0, x1, y1], abs=2)


@pytest.mark.parametrize("style_name", sorted(STYLES))
def test_every_style_renders_rgba_with_transparent_corners(staged, style_name):
    staged.pose({}, style=style_name)
    image = rgba(staged.render())
    assert image.shape == (256, 256, 4)
    for corner in (image[:8, :8], image[:8, -8:], image[-8:, :8], image[-8:, -8:]):
        assert corner[..., 3].max() == 0
    assert image[..., 3].max() == 255  # the character itself is opaque


def test_group_morph_is_expanded_and_bone_morph_poses_the_head(staged, character):
    name, members = GROUP_MORPH
    weights = expand_morphs(character.model, {_morph(character, name): 0.5})
    assert weights == pytest.approx({_morph(character, m): 0.5 * w for m, w in members})
    staged.pose({})
    before = staged.face_bbox()
    staged.pose({_morph(character, "うなずき"): 1.0})
    assert staged.face_bbox() != pytest.approx(before, abs=0.5)


def test_head_bones_found_by_english_name_or_hierarchy_else_clear_error(character):
    model = character.model
    english = dataclasses.replace(model, bones=tuple(
        dataclasses.replace(b, name=f"x{i}") if b.name in ("首", "頭") else b for i, b in enumerate(model.bones)))
    assert find_head_bones(english) == find_head_bones(model)  # name_en "neck" / "head"
    head_only = dataclasses.replace(model, bones=tuple(
        dataclasses.replace(b, name="bone", name_en="bone") if b.name == "首" else b for b in model.bones))
    assert find_head_bones(head_only) == find_head_bones(model)  # neck = the head's parent
    no_head = dataclasses.replace(model, bones=tuple(
        dataclasses.replace(b, name="bone", name_en="bone") if b.name in ("首", "頭") else b for b in model.bones))
    with pytest.raises(SceneError, match="neck"):
        find_head_bones(no_head)


def test_escaping_texture_falls_back_to_the_material_colour(character, tmp_path):
    model = dataclasses.replace(character.model, textures=("..\\..\\etc\\passwd",))
    scene = ModelScene(model, tmp_path, FAST)
    try:
        assert any("rejected" in w and "passwd" in w for w in scene.warnings)
        image = rgba(scene.render())
        assert image[..., 3].max() == 255
    finally:
        scene.close()


def test_cycles_cpu_render_is_rgba_with_transparent_background(character, tmp_path):
    scene = ModelScene(character.model, None, RenderSettings(engine="cycles", samples=8))
    try:
        scene.pose({}, light_intensity=0.9, style="textured_toon")
        bright = rgba(scene.render())
        scene.pose({}, light_intensity=0.3, style="textured_toon")
        dim = rgba(scene.render())
    finally:
        scene.close()
    assert bright.shape == (256, 256, 4) and bright[:8, :8, 3].max() == 0
    face = bright[..., 3] == 255
    assert bright[face][:, :3].mean() > dim[face][:, :3].mean() + 10  # light intensity matters


def test_blender_keeps_the_bone_names(character):
    """Its own scene (after the tests of the shared one: a new scene empties Blender)."""
    model = _odd_bone_names(character)
    scene = ModelScene(model, None, FAST)
    try:
        assert scene.bone_names == blender_bone_names(model)
        assert sorted(b.name for b in scene.arm_obj.data.bones) == sorted(scene.bone_names)
    finally:
        scene.close()


def test_mediapipe_finds_the_face_in_frontal_renders(tmp_path):
    """An independent detector finds a face, centred inside face_bbox, in >= 90 % of frontal renders."""
    mp = pytest.importorskip("mediapipe")
    rng = np.random.default_rng(7)
    sampling = SamplingConfig(images_per_model=8, frontal_fraction=1.0)
    hits, total = 0, 0
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
        for i in range(3):
            path = write_character(random_character(rng), tmp_path / f"c{i}")
            result = scene_mod.render_model(RenderJob(str(path), f"c{i}", sampling, RenderSettings(samples=8)))
            for image in result.images:
                total += 1
                hits += _face_in_box(detector, rgba(image.png), image.face_bbox)
    rate = hits / total
    print(f"MediaPipe face detection rate on frontal renders: {rate:.2%} ({hits}/{total})")
    assert rate >= 0.9


def _face_in_box(detector, image: np.ndarray, box) -> bool:
    rgb = image[..., :3].astype(float) * (image[..., 3:] / 255) + 255 * (1 - image[..., 3:] / 255)
    found = detector.process(rgb.astype(np.uint8)).detections or []
    for detection in found:
        b = detection.location_data.relative_bounding_box
        cx, cy = (b.xmin + b.width / 2) * image.shape[1], (b.ymin + b.height / 2) * image.shape[0]
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
            return True
    return False

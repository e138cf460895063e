"""factory/render/scene.py with real bpy renders: import, morphs, pose, bbox, alpha, styles, MediaPipe."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("bpy")

from factory.render import scene as scene_mod  # noqa: E402
from factory.render.jobs import RenderJob, RenderSettings  # noqa: E402
from factory.render.sampling import STYLES, SamplingConfig  # noqa: E402
from factory.render.scene import ModelScene, SceneError, expand_morphs, find_head_bones  # noqa: E402
from factory.render.styles import STYLE_REGISTRY  # noqa: E402
from factory.synthetic.character import GROUP_MORPH, build_character, random_character, write_character  # noqa: E402

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

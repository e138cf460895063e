"""The synthetic character: distinct seeded looks, sound rig and morphs, written with its texture."""

from __future__ import annotations

import numpy as np
from PIL import Image

from factory.sources.pmx import read_pmx
from factory.sources.pmx_model import MorphKind, WeightType
from factory.sources.pmx_writer import pmx_bytes
from factory.synthetic.character import (
    GROUP_MORPH,
    CharacterLook,
    build_character,
    random_character,
    write_character,
)


def test_seeded_characters_are_distinct_and_reproducible():
    looks = [CharacterLook.random(np.random.default_rng(seed)) for seed in range(5)]
    assert len({(lk.hair_color, lk.skin_color, lk.eye_color) for lk in looks}) == 5
    a = random_character(np.random.default_rng(11))
    b = random_character(np.random.default_rng(11))
    assert pmx_bytes(a.model) == pmx_bytes(b.model)
    assert np.array_equal(a.texture, b.texture)


def test_look_parameters_change_the_mesh():
    short = build_character(CharacterLook(hair_length=1.0))
    long = build_character(CharacterLook(hair_length=5.0))
    assert _region(long, "back_hair")[:, 1].min() < _region(short, "back_hair")[:, 1].min() - 3.5
    small = build_character(CharacterLook(eye_size=0.8))
    big = build_character(CharacterLook(eye_size=1.2))
    assert np.ptp(_region(big, "eye_left")[:, 0]) > 1.4 * np.ptp(_region(small, "eye_left")[:, 0])


def _region(character, name: str) -> np.ndarray:
    return character.model.vertices.positions[character.regions[name]]


def test_rig_hierarchy_and_weights():
    model = build_character().model
    index = {b.name: i for i, b in enumerate(model.bones)}
    parents = {b.name: b.parent for b in model.bones}
    assert (parents["頭"], parents["首"], parents["上半身"]) == (index["首"], index["上半身"], index["センター"])
    v = model.vertices
    used = v.bone_weights > 0
    assert np.all(v.bone_indices[used] >= 0) and np.all(v.bone_indices[used] < len(model.bones))
    assert np.allclose(v.bone_weights.sum(axis=1), 1.0)
    assert set(np.unique(v.weight_types)) == {WeightType.BDEF1, WeightType.BDEF2}
    character = build_character()
    head = character.regions["head"]
    assert np.all(v.bone_indices[head, 0] == index["頭"])
    # a head rotation moves the face: eyes, brows and mouth ride on the head (or on eye bones under it)
    for region in ("eyes", "brows", "mouth"):
        bones = {model.bones[i].parent if model.bones[i].name in ("左目", "右目") else i
                 for i in v.bone_indices[character.regions[region], 0]}
        assert bones == {index["頭"]}, region


def test_face_faces_the_camera_and_sits_on_the_head():
    character = build_character()
    p = character.model.vertices.positions
    head = p[character.regions["head"]]
    for region in ("eye_left", "eye_right", "mouth", "brow_left"):
        feature = p[character.regions[region]]
        assert feature[:, 2].max() < head[:, 2].mean()  # in front (-Z) of the head centre
    assert p[character.regions["eye_left"], 0].mean() > 0 > p[character.regions["eye_right"], 0].mean()


def test_special_morphs():
    character = build_character(dead_morph=True)
    morphs = {m.name: m for m in character.model.morphs}
    dead = morphs["目閉じ"]
    assert dead.kind is MorphKind.VERTEX and len(dead.offsets) > 0 and not dead.offsets["offset"].any()
    group = morphs[GROUP_MORPH[0]]
    names = [m.name for m in character.model.morphs]
    assert group.kind is MorphKind.GROUP
    assert [names[i] for i in group.offsets["index"]] == [member for member, _ in GROUP_MORPH[1]]
    nod = next(m for m in character.model.morphs if m.kind is MorphKind.BONE)
    assert character.model.bones[nod.offsets["index"][0]].name == "頭"
    assert np.isclose(np.linalg.norm(nod.offsets["rotation"][0]), 1.0)


def test_written_character_has_its_texture(tmp_path):
    look = CharacterLook(skin_color=(200, 150, 100))
    character = build_character(look)
    path = write_character(character, tmp_path, stem="chara")
    assert path == tmp_path / "chara.pmx"
    image = np.asarray(Image.open(tmp_path / "tex" / "face.png"))
    assert image.shape == (128, 128, 4) and np.array_equal(image, character.texture)
    assert (image[..., :3] == (200, 150, 100)).all(axis=-1).any()
    model = read_pmx(path)
    skin = next(m for m in model.materials if m.name_en == "skin")
    assert np.allclose(skin.diffuse[:3], np.array(look.skin_color) / 255, atol=1e-6)  # the no-texture fallback
    assert all(0 <= uv <= 1 for uv in (model.vertices.uvs.min(), model.vertices.uvs.max()))

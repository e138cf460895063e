"""PMD reader: a hand-built PMD file converts to a PmxModel; malformed ones raise PmxError."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from factory.render.morphs import map_morphs
from factory.sources.models import read_model
from factory.sources.pmd import parse_pmd
from factory.sources.pmx import PmxError
from factory.sources.pmx_model import BoneFlag, MorphKind, WeightType


def _name(text: str, size: int) -> bytes:
    return text.encode("cp932").ljust(size, b"\x00")


def pmd_bytes(english: bool = True) -> bytes:
    """4 vertices, 2 faces, 1 material, 3 bones (one IK), base + 2 morphs, optional English names."""
    out = [b"Pmd", struct.pack("<f", 1.0), _name("テスト", 20), _name("コメント", 256)]
    out.append(struct.pack("<I", 4))
    for i in range(4):
        out.append(struct.pack("<3f3f2f2HBB", i, i * 2, 0, 0, 0, -1, i / 4, 0.5, 0, 1, 100 if i < 2 else 40, i % 2))
    out.append(struct.pack("<I6H", 6, 0, 1, 2, 0, 2, 3))
    out.append(struct.pack("<I", 1))
    out.append(struct.pack("<4ff3f3fBBI", 1, 0.5, 0.25, 0.8, 5, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 2, 1, 6))
    out.append(_name("tex\\face.png*env.sph", 20))
    out.append(struct.pack("<H", 3))
    out.append(_BONE.pack(_name("センター", 20), 0xFFFF, 1, 1, 0, 0.0, 8.0, 0.0))
    out.append(_BONE.pack(_name("首", 20), 0, 0, 0, 0, 0.0, 12.0, 0.0))
    out.append(_BONE.pack(_name("左足ＩＫ", 20), 0, 0, 2, 0, 1.0, 0.0, 0.0))
    out.append(struct.pack("<H", 1) + struct.pack("<HHBHf2H", 2, 1, 2, 40, 0.5, 1, 0))
    out.append(struct.pack("<H", 3))
    out.append(_name("base", 20) + struct.pack("<IB", 2, 0) + struct.pack("<I3fI3f", 2, 2, 4, 0, 3, 3, 6, 0))
    out.append(_name("まばたき", 20) + struct.pack("<IB", 1, 2) + struct.pack("<I3f", 1, 0, -0.5, 0))
    out.append(_name("あ", 20) + struct.pack("<IB", 1, 3) + struct.pack("<I3f", 0, 0, -0.2, 0))
    out.append(struct.pack("<B2H", 2, 1, 2))  # morph display list
    out.append(struct.pack("<B", 1) + _name("表情", 50))
    out.append(struct.pack("<I", 1) + struct.pack("<HB", 1, 1))
    if english:
        out.append(struct.pack("<B", 1) + _name("test", 20) + _name("comment", 256))
        out += [_name(n, 20) for n in ("center", "neck", "leg IK_L")]
        out += [_name(n, 20) for n in ("blink", "a")]
        out.append(_name("Exp", 50))
    return b"".join(out)


_BONE = struct.Struct("<20sHHBH3f")


def test_pmd_converts_to_pmx_model():
    model = parse_pmd(pmd_bytes())
    assert (model.info.name, model.info.comment, model.info.name_en) == ("テスト", "コメント", "test")
    v = model.vertices
    assert np.array_equal(v.positions[:, 1], [0, 2, 4, 6]) and v.uvs.dtype == np.float32
    assert list(v.weight_types) == [WeightType.BDEF1, WeightType.BDEF1, WeightType.BDEF2, WeightType.BDEF2]
    assert np.allclose(v.bone_weights[2, :2], [0.4, 0.6]) and list(v.edge_scales) == [1, 0, 1, 0]
    assert model.faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert model.textures == ("tex\\face.png", "env.sph")
    (material,) = model.materials
    assert (material.texture, material.sphere_texture, material.sphere_mode, material.toon) == (0, 1, 1, 2)
    assert material.flags & 0x01  # translucent: drawn two-sided
    assert [b.name for b in model.bones] == ["センター", "首", "左足ＩＫ"]
    assert [b.name_en for b in model.bones] == ["center", "neck", "leg IK_L"]
    assert model.bones[1].parent == 0 and model.bones[0].flags & BoneFlag.TRANSLATABLE
    ik = model.bones[2].ik
    assert ik.target == 1 and ik.loop_count == 40 and ik.limit_angle == pytest.approx(2.0)
    assert [link.bone for link in ik.links] == [1, 0]
    assert [m.name for m in model.morphs] == ["まばたき", "あ"] and [m.name_en for m in model.morphs] == ["blink", "a"]
    blink = model.morphs[0]
    assert blink.kind is MorphKind.VERTEX and blink.panel == 2
    assert blink.offsets["index"].tolist() == [3]  # base entry 1 -> model vertex 3
    assert [r.target for r in map_morphs(model.morphs)] == ["eye_close", "mouth_a"]


def test_pmd_without_english_names():
    model = parse_pmd(pmd_bytes(english=False))
    assert model.info.name_en == "" and [m.name_en for m in model.morphs] == ["", ""]


def test_read_model_dispatches_by_extension(tmp_path):
    path = tmp_path / "m.PMD"
    path.write_bytes(pmd_bytes())
    assert read_model(path).info.name == "テスト"
    with pytest.raises(PmxError, match="unknown model extension"):
        read_model(tmp_path / "m.obj")


@pytest.mark.parametrize(
    "mutate, section, problem",
    [
        (lambda d: b"", "header", "empty file"),
        (lambda d: b"Pmx" + d[3:], "header", "wrong magic"),
        (lambda d: d[:3] + struct.pack("<f", 2.0) + d[7:], "header", "unsupported version 2"),
        (lambda d: d[:283] + struct.pack("<I", 10**8) + d[287:], "vertices", "vertex count"),
        (lambda d: d[:200], "header", "truncated"),
        (lambda d: d[:300], "vertices", "truncated"),
    ],
)
def test_malformed_pmd(mutate, section, problem):
    with pytest.raises(PmxError) as info:
        parse_pmd(mutate(pmd_bytes()), "x.pmd")
    message = str(info.value)
    assert message.startswith("bad PMD file x.pmd: ") and f"section '{section}'" in message and problem in message


def test_pmd_face_index_out_of_range():
    data = bytearray(pmd_bytes())
    faces_at = 283 + 4 + 4 * 38 + 4
    struct.pack_into("<H", data, faces_at + 2, 9)
    expected = rf"face vertex index 9 out of range .* section 'faces' at offset {faces_at + 2}"
    with pytest.raises(PmxError, match=expected):
        parse_pmd(bytes(data))


def test_pmd_truncation_anywhere_raises_pmx_error():
    data = pmd_bytes()
    for cut in range(0, len(data) - 1, 7):
        try:
            parse_pmd(data[:cut])
        except PmxError:
            continue
        # a cut exactly at the end of the required sections is a valid file without the optional tail
        assert cut >= data.index(struct.pack("<B2H", 2, 1, 2), 600)


def test_pmd_random_corruption_never_escapes_as_another_exception():
    data = pmd_bytes()
    rng = np.random.default_rng(0)
    for _ in range(300):
        corrupt = bytearray(data)
        for pos in rng.integers(0, len(data), size=3):
            corrupt[pos] = rng.integers(0, 256)
        try:
            parse_pmd(bytes(corrupt), "x.pmd")
        except PmxError as err:
            assert "in section '" in str(err) and "at offset" in str(err)


@pytest.mark.parametrize("count", [5, 4, 1])
def test_pmd_material_face_count_must_be_whole_triangles(count):
    """As the PMX reader does: a material's face index count that is not a multiple of 3 is refused."""
    data = bytearray(pmd_bytes())
    count_at = 283 + 4 + 4 * 38 + 4 + 6 * 2 + 4 + 46  # the only material's index_count
    assert struct.unpack_from("<I", data, count_at)[0] == 6
    struct.pack_into("<I", data, count_at, count)
    with pytest.raises(PmxError) as info:
        parse_pmd(bytes(data), "x.pmd")
    err = info.value
    assert err.section == "materials" and err.offset == count_at
    assert f"material 1 uses {count} face indices, not a multiple of 3" in str(err)

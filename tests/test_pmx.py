"""PMX reader and writer: round trips of every section, and every malformed case ends in PmxError."""

from __future__ import annotations

import dataclasses
import re
import struct

import numpy as np
import pytest

from factory.sources.pmx import PmxError, parse_pmx, read_pmx
from factory.sources.pmx_model import (
    Bone,
    BoneFlag,
    Ik,
    IkLink,
    IndexKind,
    Morph,
    MorphKind,
    MorphPanel,
    PmxHeader,
    PmxModel,
    Vertices,
    WeightType,
    morph_index_kind,
    morph_offset_dtype,
    weight_dtype,
)
from factory.sources.pmx_writer import pmx_bytes, reorder_bones, write_pmx
from factory.synthetic.character import FILE_BONE_ORDER, TEXTURE_PATH, build_character

from tests.realdata import GENE  # noqa: E402

WHERE = re.compile(r"^bad PMX file .+: .+ in section '[a-z ]+' at offset \d+( \(.+\))?$")


@pytest.fixture(scope="module")
def character():
    return build_character(dead_morph=True)


@pytest.fixture(scope="module")
def model(character) -> PmxModel:
    return character.model


@pytest.fixture(scope="module")
def data(model) -> bytes:
    return pmx_bytes(model)


def _vertices_start(model: PmxModel) -> int:
    """Byte offset of the vertex count (after the header and the four texts)."""
    texts = (model.info.name, model.info.name_en, model.info.comment, model.info.comment_en)
    return 17 + sum(4 + len(t.encode(model.header.encoding)) for t in texts)


def _offsets_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and all(np.array_equal(a[f], b[f]) for f in a.dtype.names)


def _f32(value):
    """Value with every float rounded to float32, as the file stores it."""
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, *(_f32(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, tuple):
        return tuple(_f32(v) for v in value)
    if isinstance(value, float):
        return float(np.float32(value))
    return value


def assert_same_model(a: PmxModel, b: PmxModel) -> None:
    """Field-by-field equality of two models (arrays exactly, index sizes excepted)."""
    assert a.info == b.info
    assert (a.header.version, a.header.encoding, a.header.additional_uv_count) == (
        b.header.version, b.header.encoding, b.header.additional_uv_count)
    for f in dataclasses.fields(Vertices):
        x, y = getattr(a.vertices, f.name), getattr(b.vertices, f.name)
        assert x.shape == y.shape and np.array_equal(x, y), f.name
    assert np.array_equal(a.faces, b.faces)
    assert a.textures == b.textures
    assert _f32(a.materials) == _f32(b.materials)
    assert _f32(a.bones) == _f32(b.bones)
    assert len(a.morphs) == len(b.morphs)
    for m, n in zip(a.morphs, b.morphs):
        assert (m.name, m.name_en, m.panel, m.kind) == (n.name, n.name_en, n.panel, n.kind)
        assert _offsets_equal(m.offsets, n.offsets), m.name
    assert _f32(a.display_frames) == _f32(b.display_frames)
    assert _f32(a.rigid_bodies) == _f32(b.rigid_bodies)
    assert _f32(a.joints) == _f32(b.joints)


# ---------------------------------------------------------------- round trips
def test_synthetic_round_trip_every_section(model, data):
    back = parse_pmx(data)
    assert_same_model(model, back)
    assert pmx_bytes(back) == data  # writing what was read gives the same bytes
    assert back.header.index_sizes[IndexKind.VERTEX] == 2  # 1,000+ vertices: 2-byte unsigned
    assert back.vertices.positions.dtype == np.float32 and back.vertices.positions.shape == (len(model.vertices), 3)
    assert back.faces.shape[1] == 3 and back.faces.max() < len(back.vertices)
    assert back.textures == (TEXTURE_PATH,)
    assert {b.name for b in back.bones} >= {"センター", "上半身", "首", "頭"}
    assert back.bones[back.bone_index("頭")].parent == back.bone_index("首")


def test_read_pmx_from_file(tmp_path, model):
    path = write_pmx(model, tmp_path / "sub" / "m.pmx")
    assert_same_model(model, read_pmx(path))


def _every_feature(model: PmxModel) -> PmxModel:
    """The synthetic model with every weight type, 2 extra UVs, every bone option and morph kind."""
    v = model.vertices
    n = len(v)
    rng = np.random.default_rng(7)
    types = np.arange(n) % len(WeightType)
    indices = np.where(np.arange(4) < np.array([1, 2, 4, 2, 4])[types][:, None], rng.integers(0, 7, (n, 4)), -1)
    weights = rng.random((n, 4)).astype(np.float32)
    weights[types == WeightType.BDEF1] = (1, 0, 0, 0)
    two = (types == WeightType.BDEF2) | (types == WeightType.SDEF)
    weights[two, 1] = 1 - weights[two, 0]
    weights[two, 2:] = 0
    sdef = np.where((types == WeightType.SDEF)[:, None, None], rng.random((n, 3, 3)), 0).astype(np.float32)
    vertices = dataclasses.replace(
        v,
        additional_uvs=rng.random((n, 2, 4)).astype(np.float32),
        weight_types=types.astype(np.uint8),
        bone_indices=indices.astype(np.int32),
        bone_weights=weights,
        sdef=sdef,
        edge_scales=rng.random(n).astype(np.float32),
    )
    all_flags = (BoneFlag.ROTATABLE | BoneFlag.TRANSLATABLE | BoneFlag.INHERIT_TRANSLATION | BoneFlag.FIXED_AXIS
                 | BoneFlag.LOCAL_AXES | BoneFlag.EXTERNAL_PARENT | BoneFlag.IK | BoneFlag.TAIL_IS_BONE)
    ik = Ik(target=3, loop_count=40, limit_angle=0.5,
            links=(IkLink(2, ((-1.0, 0.0, 0.0), (0.5, 0.0, 0.0))), IkLink(1)))
    extra_bone = Bone("全部", "everything", (1.0, 2.0, 3.0), 0, 2, all_flags, 4, (1, 0.25), (0.0, 1.0, 0.0),
                      ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)), 7, ik)

    def morph(kind: MorphKind, n_offsets: int, index_limit: int) -> Morph:
        table = np.zeros(n_offsets, dtype=morph_offset_dtype(kind))
        table["index"] = rng.integers(0, index_limit, n_offsets)
        for name in table.dtype.names[1:]:
            table[name] = rng.random(table[name].shape) * (2 if table[name].dtype.kind == "u" else 1)
        return Morph(f"m{kind.value}", kind.name.lower(), int(MorphPanel.OTHER), kind, table)

    limits = {IndexKind.VERTEX: n, IndexKind.BONE: 8, IndexKind.MORPH: len(model.morphs),
              IndexKind.MATERIAL: len(model.materials), IndexKind.RIGID_BODY: len(model.rigid_bodies)}
    extra_morphs = tuple(morph(k, 5, limits[morph_index_kind(k)]) for k in MorphKind)
    header = PmxHeader(version=2.1, encoding="utf-8", additional_uv_count=2)
    return dataclasses.replace(model, header=header, vertices=vertices, bones=model.bones + (extra_bone,),
                               morphs=model.morphs + extra_morphs)


def test_round_trip_every_feature_pmx21_utf8(model):
    full = _every_feature(model)
    data = pmx_bytes(full)
    back = parse_pmx(data)
    assert back.header.version == pytest.approx(2.1) and back.header.encoding == "utf-8"
    assert_same_model(full, back)
    assert set(np.unique(back.vertices.weight_types)) == set(WeightType)
    assert {m.kind for m in back.morphs} == set(MorphKind)
    assert back.bones[-1].ik.links[0].limits == ((-1.0, 0.0, 0.0), (0.5, 0.0, 0.0))


def _bone_names(model: PmxModel, indices) -> list:
    return [model.bones[i].name if 0 <= i < len(model.bones) else None for i in indices]


def test_synthetic_bones_are_out_of_hierarchy_order():
    model = build_character().model
    assert [b.name for b in model.bones] == list(FILE_BONE_ORDER)
    assert [b.name for b in build_character(hierarchy_order=True).model.bones] == [
        "センター", "上半身", "首", "頭", "両目", "左目", "右目"]
    assert any(b.parent > i for i, b in enumerate(model.bones))  # children before parents
    assert model.bone_index("首") != 2  # not where a parents-first order puts it


def test_reorder_bones_remaps_every_bone_reference():
    full = _every_feature(build_character(dead_morph=True, hierarchy_order=True).model)
    order = list(range(len(full.bones)))[::-1]
    moved = reorder_bones(full, order)
    assert [b.name for b in moved.bones] == [full.bones[i].name for i in order]
    for a, b in zip((full.bones[i] for i in order), moved.bones):
        assert _bone_names(full, [a.parent]) == _bone_names(moved, [b.parent]), a.name
        if a.flags & BoneFlag.TAIL_IS_BONE:
            assert _bone_names(full, [a.tail]) == _bone_names(moved, [b.tail])
        if a.inherit:
            assert _bone_names(full, [a.inherit[0]]) == _bone_names(moved, [b.inherit[0]])
        if a.ik:
            assert _bone_names(full, [a.ik.target, *(k.bone for k in a.ik.links)]) == _bone_names(
                moved, [b.ik.target, *(k.bone for k in b.ik.links)])
    used = full.vertices.bone_weights > 0
    assert _bone_names(full, full.vertices.bone_indices[used]) == _bone_names(moved, moved.vertices.bone_indices[used])
    for m, n in zip(full.morphs, moved.morphs):
        if m.kind is MorphKind.BONE:
            assert _bone_names(full, m.offsets["index"]) == _bone_names(moved, n.offsets["index"])
        else:
            assert _offsets_equal(m.offsets, n.offsets)
    assert [(t, full.bones[i].name if t == 0 else i) for f in full.display_frames for t, i in f.items] == [
        (t, moved.bones[i].name if t == 0 else i) for f in moved.display_frames for t, i in f.items]
    bodies = [_bone_names(m, [r.bone for r in m.rigid_bodies]) for m in (full, moved)]
    assert bodies[0] == bodies[1]
    assert_same_model(moved, parse_pmx(pmx_bytes(moved)))
    inverse = list(np.argsort(order))
    assert pmx_bytes(reorder_bones(moved, inverse)) == pmx_bytes(full)
    with pytest.raises(ValueError, match="permutation"):
        reorder_bones(full, order[:-1] + order[:1])  # one bone twice, one missing


def test_bdef_weights_are_expanded(model):
    v = parse_pmx(pmx_bytes(model)).vertices
    bdef1 = v.weight_types == WeightType.BDEF1
    bdef2 = v.weight_types == WeightType.BDEF2
    assert bdef1.any() and bdef2.any()  # the lower neck is BDEF2 in the synthetic character
    assert np.all(v.bone_weights[bdef1] == (1, 0, 0, 0)) and np.all(v.bone_indices[bdef1, 1:] == -1)
    assert np.allclose(v.bone_weights[bdef2].sum(axis=1), 1.0)


def test_four_byte_vertex_indices():
    n = 70_000  # over 65,536: vertex indices need 4 bytes
    base = build_character().model
    rng = np.random.default_rng(1)
    vertices = Vertices(
        positions=rng.random((n, 3), dtype=np.float32), normals=rng.random((n, 3), dtype=np.float32),
        uvs=rng.random((n, 2), dtype=np.float32), additional_uvs=np.zeros((n, 0, 4), np.float32),
        weight_types=np.zeros(n, np.uint8), bone_indices=np.tile([0, -1, -1, -1], (n, 1)).astype(np.int32),
        bone_weights=np.tile([1, 0, 0, 0], (n, 1)).astype(np.float32), sdef=np.zeros((n, 3, 3), np.float32),
        edge_scales=np.ones(n, np.float32))
    faces = np.array([[0, 1, n - 1]], dtype=np.int32)
    material = dataclasses.replace(base.materials[0], index_count=3)
    big = dataclasses.replace(base, vertices=vertices, faces=faces, materials=(material,), morphs=(),
                              display_frames=())
    back = parse_pmx(pmx_bytes(big))
    assert back.header.index_sizes[IndexKind.VERTEX] == 4
    assert np.array_equal(back.faces, faces) and np.array_equal(back.vertices.positions, vertices.positions)


# ------------------------------------------------------------ malformed files
def _raises(data: bytes, section: str, offset: int | None = None, problem: str = "") -> PmxError:
    with pytest.raises(PmxError) as info:
        parse_pmx(data, "x.pmx")
    err = info.value
    assert WHERE.match(str(err)), str(err)
    assert err.section == section, str(err)
    assert f"section '{section}'" in str(err)
    if offset is not None:
        assert err.offset == offset, str(err)
    assert problem in str(err)
    return err


def test_zero_bytes():
    _raises(b"", "header", 0, "empty file")


def test_wrong_magic(data):
    _raises(b"PMD " + data[4:], "header", 0, "wrong magic")
    _raises(b"Pmd\x00\x00\x80?", "header", 0, "wrong magic")


def test_version_3_rejected(data):
    _raises(data[:4] + struct.pack("<f", 3.0) + data[8:], "header", 4, "unsupported version 3")


def test_truncated_in_each_section(model, data):
    start = _vertices_start(model)
    err = _raises(data[:6], "header", 4, "truncated")
    assert str(err) == "bad PMX file x.pmx: truncated in section 'header' at offset 4 (need 4 bytes, have 2)"
    _raises(data[: start - 3], "model info")
    err = _raises(data[: start + 50], "vertices", problem="truncated")
    assert "x.pmx" in str(err)
    _raises(data[:-3], "joints", problem="truncated")


def test_truncation_anywhere_raises_pmx_error(data):
    for cut in np.linspace(0, len(data) - 1, 160).astype(int):
        with pytest.raises(PmxError, match=WHERE):
            parse_pmx(data[:cut], "x.pmx")


def _vertex_records(model: PmxModel, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and size of every vertex record in `data`."""
    bone = parse_pmx(data).header.index_sizes[IndexKind.BONE]
    sizes = np.array([32 + 1 + weight_dtype(WeightType(t), bone).itemsize + 4 for t in model.vertices.weight_types])
    starts = _vertices_start(model) + 4 + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return starts, sizes


def test_a_cut_vertex_record_is_blamed_on_itself(model, data):
    """A file that ends inside vertex k names vertex k, and never a negative byte count."""
    starts, sizes = _vertex_records(model, data)
    walked = np.flatnonzero(starts >= starts[0] + len(starts) * sizes.min())  # shorter files fail the count check
    rng = np.random.default_rng(3)
    for k in [*rng.choice(walked, 60), len(starts) - 1]:
        for cut in (starts[k], starts[k] + 33, starts[k] + sizes[k] - 1):  # at its start, past its type byte, 1 short
            err = _raises(data[:cut], "vertices", int(starts[k]), f"truncated at vertex {k} of {len(starts)}")
            have = int(re.search(r"have (-?\d+)", str(err)).group(1))
            assert have == cut - starts[k] >= 0, str(err)


def test_gene_cut_inside_a_vertex_names_that_vertex():
    """The fuzzing find: Gene cut at 1,199,773 bytes was blamed on vertex 26759 with 'have -15'."""
    if not GENE.exists():
        pytest.skip(f"real MMD model not found at {GENE} (../shared/realdata)")
    with pytest.raises(PmxError) as info:
        parse_pmx(GENE.read_bytes()[:1_199_773], "gene.pmx")
    message = str(info.value)
    assert "truncated at vertex 26758 of 28646" in message and "have 46" in message, message
    assert not re.search(r"have -\d", message)


def test_random_corruption_never_escapes_as_another_exception(data):
    rng = np.random.default_rng(0)
    for _ in range(150):
        corrupt = bytearray(data)
        for pos in rng.integers(0, len(data), size=4):
            corrupt[pos] = rng.integers(0, 256)
        try:
            parse_pmx(bytes(corrupt), "x.pmx")
        except PmxError as err:
            assert WHERE.match(str(err)), str(err)


@pytest.mark.parametrize("count", [2**31 - 1, 10**9, -5])
def test_absurd_vertex_count_refused_before_allocating(model, data, count):
    start = _vertices_start(model)
    corrupt = data[:start] + struct.pack("<i", count) + data[start + 4:]
    _raises(corrupt, "vertices", start, f"vertex count {count}")


def test_unknown_weight_type(model, data):
    start = _vertices_start(model) + 4
    type_at = start + 32  # after position, normal, uv (no additional UVs)
    corrupt = bytearray(data)
    corrupt[type_at] = 9
    _raises(bytes(corrupt), "vertices", type_at, "unknown weight type 9")


def test_bad_text_length(data):
    corrupt = data[:17] + struct.pack("<i", -2) + data[21:]
    _raises(corrupt, "model info", 17, "bad text length -2")


def test_face_index_out_of_range(model, data):
    n_vertices = len(model.vertices)
    faces = model.faces.copy()
    faces[5, 1] = n_vertices + 3
    corrupt = pmx_bytes(dataclasses.replace(model, faces=faces))
    err = _raises(corrupt, "faces", problem=f"face vertex index {n_vertices + 3} out of range")
    # the offset points at the bad index itself
    assert struct.unpack_from("<H", corrupt, err.offset)[0] == n_vertices + 3


def _with(model: PmxModel, **changes) -> bytes:
    return pmx_bytes(dataclasses.replace(model, **changes))


@pytest.mark.parametrize(
    "case, section, problem",
    [
        ("bone_parent", "bones", "bone parent index 60 out of range"),
        ("vertex_bone", "vertices", "vertex bone index 90 out of range"),
        ("material_texture", "materials", "material texture index 5 out of range"),
        ("material_count", "materials", "face indices"),
        ("morph_vertex", "morphs", "vertex index"),
        ("group_morph", "morphs", "morph index 100"),
        ("frame_morph", "display frames", "display frame morph index"),
        ("rigid_bone", "rigid bodies", "rigid body bone index"),
        ("joint_body", "joints", "joint rigid body B index 9"),
    ],
)
def test_index_out_of_range(model, case, section, problem):
    m = model
    if case == "bone_parent":
        data = _with(m, bones=m.bones[:3] + (dataclasses.replace(m.bones[3], parent=60),) + m.bones[4:])
    elif case == "vertex_bone":
        bone_indices = m.vertices.bone_indices.copy()
        bone_indices[10, 0] = 90
        data = _with(m, vertices=dataclasses.replace(m.vertices, bone_indices=bone_indices))
    elif case == "material_texture":
        data = _with(m, materials=(dataclasses.replace(m.materials[0], texture=5),) + m.materials[1:])
    elif case == "material_count":
        data = _patch_last_material_count(m)  # the writer refuses such a model: patch its bytes
    elif case == "morph_vertex":
        offsets = m.morphs[0].offsets.copy()
        offsets["index"][2] = len(m.vertices) + 1
        data = _with(m, morphs=(dataclasses.replace(m.morphs[0], offsets=offsets),) + m.morphs[1:])
    elif case == "group_morph":
        group = next(i for i, x in enumerate(m.morphs) if x.kind is MorphKind.GROUP)
        offsets = m.morphs[group].offsets.copy()
        offsets["index"][0] = 100
        morphs = list(m.morphs)
        morphs[group] = dataclasses.replace(m.morphs[group], offsets=offsets)
        data = _with(m, morphs=tuple(morphs))
    elif case == "frame_morph":
        frame = dataclasses.replace(m.display_frames[1], items=((1, 110),))
        data = _with(m, display_frames=(m.display_frames[0], frame))
    elif case == "rigid_bone":
        data = _with(m, rigid_bodies=(dataclasses.replace(m.rigid_bodies[0], bone=40),) + m.rigid_bodies[1:])
    else:
        data = _with(m, joints=(dataclasses.replace(m.joints[0], rigid_b=9),))
    _raises(bytes(data), section, problem=problem)


def _patch_last_material_count(model: PmxModel) -> bytes:
    """Model bytes whose last material claims 3 more face indices than exist."""
    good = pmx_bytes(model)
    count = model.materials[-1].index_count
    # the last material's count is the 4 bytes just before the bone table's count and first bone name
    first = model.bones[0].name.encode("utf-16-le")
    at = good.index(struct.pack("<iii", count, len(model.bones), len(first)) + first)
    return good[:at] + struct.pack("<i", count + 3) + good[at + 4:]


def test_impulse_rigid_body_checked_after_rigid_bodies(model):
    table = np.zeros(1, dtype=morph_offset_dtype(MorphKind.IMPULSE))
    table["index"] = 7
    impulse = Morph("衝撃", "impulse", 4, MorphKind.IMPULSE, table)
    _raises(_with(model, morphs=model.morphs + (impulse,)), "morphs", problem="rigid body index 7 out of range")


def test_unknown_morph_type(model):
    data = pmx_bytes(model)
    name = model.morphs[0].name.encode("utf-16-le")
    at = data.index(name) + len(name)
    at += 4 + len(model.morphs[0].name_en.encode("utf-16-le")) + 1  # name_en, panel byte
    corrupt = data[:at] + bytes([42]) + data[at + 1:]
    _raises(corrupt, "morphs", at, "unknown morph type 42")


def test_error_from_file_names_the_file(tmp_path):
    path = tmp_path / "broken model.pmx"
    path.write_bytes(b"PMX \x00\x00")
    with pytest.raises(PmxError, match=r"bad PMX file broken model\.pmx: truncated"):
        read_pmx(path)


def test_writer_refuses_inconsistent_bone_flags(model):
    bone = dataclasses.replace(model.bones[0], flags=model.bones[0].flags | BoneFlag.IK, ik=None)
    with pytest.raises(ValueError, match="IK"):
        pmx_bytes(dataclasses.replace(model, bones=(bone,) + model.bones[1:]))

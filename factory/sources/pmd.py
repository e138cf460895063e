"""PMD (MMD's older format, version 1.0) reader, converted to a `PmxModel`.

Read: header, vertices (BDEF2 with a 0-100 weight), faces, materials (with
"texture*sphere" names split into the texture table), bones with IK chains,
morphs (the "base" morph's vertex list resolved, so every morph becomes an
ordinary vertex morph keeping its panel byte), and the optional English
names. Display lists are skipped; toon texture names, rigid bodies and joints
are not kept. Text is Shift_JIS (cp932). Errors are `PmxError` with the PMD
section and byte offset, like the PMX reader's.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from factory.sources.pmx import ByteCursor
from factory.sources.pmx_model import (
    Bone,
    BoneFlag,
    Ik,
    IkLink,
    Material,
    ModelInfo,
    Morph,
    MorphKind,
    PmxHeader,
    PmxModel,
    Vertices,
    WeightType,
    morph_offset_dtype,
)

__all__ = ["parse_pmd", "read_pmd"]

_VERTEX = np.dtype([("position", "<f4", (3,)), ("normal", "<f4", (3,)), ("uv", "<f4", (2,)),
                    ("bones", "<u2", (2,)), ("weight", "u1"), ("no_edge", "u1")])
_MATERIAL = np.dtype([("diffuse", "<f4", (4,)), ("specularity", "<f4"), ("specular", "<f4", (3,)),
                      ("ambient", "<f4", (3,)), ("toon", "u1"), ("edge", "u1"), ("index_count", "<u4"),
                      ("texture", "S20")])
_BONE = struct.Struct("<20sHHBH3f")
_IK = struct.Struct("<HHBHf")  # IK bone, target, chain length, iterations, limit; then the chain
_MORPH_VERTEX = np.dtype([("index", "<u4"), ("offset", "<f4", (3,))])
_NO_BONE = 0xFFFF
_BONE_TRANSLATABLE, _BONE_INHERIT, _BONE_HIDDEN = 1, 5, 7  # PMD bone type bytes


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("cp932", errors="replace")


class _PmdReader:
    def __init__(self, data: bytes, source: str):
        self.cur = ByteCursor(data, source, fmt="PMD")

    def u16(self) -> int:
        return struct.unpack("<H", self.cur.take(2))[0]

    def u32_count(self, what: str, record: int) -> int:
        """uint32 count, refused when the bytes left cannot hold it."""
        at = self.cur.pos
        n = struct.unpack("<I", self.cur.take(4))[0]
        if n * record > self.cur.remaining():
            raise self.cur.error(f"truncated or absurd {what} count {n}", at,
                                 f"needs {n * record} bytes, have {self.cur.remaining()}")
        return n

    def check(self, values: np.ndarray, limit: int, what: str, start: int, stride: int, field: int = 0) -> None:
        """Range check of (records, k) uint16/32 indices stored every `stride` bytes, `field` bytes in."""
        bad = np.flatnonzero(values >= limit)
        if bad.size:
            row, col = divmod(int(bad[0]), values.shape[1])
            width = values.dtype.itemsize
            raise self.cur.error(f"{what} index {int(values[row, col])} out of range",
                                 start + row * stride + field + col * width, f"valid 0..{limit - 1}")


def _vertices(records: np.ndarray) -> Vertices:
    n = len(records)
    weight = records["weight"].astype(np.float32) / 100.0
    single = (weight >= 1.0) | (records["bones"][:, 0] == records["bones"][:, 1])
    bone_indices = np.full((n, 4), -1, dtype=np.int32)
    bone_indices[:, :2] = records["bones"]
    bone_indices[single, 1] = -1
    bone_weights = np.zeros((n, 4), dtype=np.float32)
    bone_weights[:, 0] = np.where(single, 1.0, weight)
    bone_weights[:, 1] = np.where(single, 0.0, 1.0 - weight)
    return Vertices(
        positions=records["position"].copy(), normals=records["normal"].copy(), uvs=records["uv"].copy(),
        additional_uvs=np.zeros((n, 0, 4), np.float32),
        weight_types=np.where(single, WeightType.BDEF1, WeightType.BDEF2).astype(np.uint8),
        bone_indices=bone_indices, bone_weights=bone_weights, sdef=np.zeros((n, 3, 3), np.float32),
        edge_scales=(records["no_edge"] == 0).astype(np.float32),
    )


def _materials(records: np.ndarray) -> tuple[tuple[Material, ...], tuple[str, ...]]:
    """Materials plus the texture table built from their 'texture*sphere' names."""
    textures: list[str] = []

    def texture_index(name: str) -> int:
        if not name:
            return -1
        if name not in textures:
            textures.append(name)
        return textures.index(name)

    materials = []
    for i, r in enumerate(records):
        names = _text(r["texture"].tobytes()).split("*")
        sphere = next((n for n in names if n.lower().endswith((".sph", ".spa"))), "")
        main = next((n for n in names if n and n != sphere), "")
        toon = int(r["toon"])
        alpha = float(r["diffuse"][3])
        materials.append(Material(
            name=f"材質{i + 1}", name_en=f"material{i + 1}", diffuse=tuple(map(float, r["diffuse"])),
            specular=tuple(map(float, r["specular"])), specular_strength=float(r["specularity"]),
            ambient=tuple(map(float, r["ambient"])),
            flags=(0x10 if r["edge"] else 0) | (0x01 if alpha < 1.0 else 0),  # MMD draws translucent ones 2-sided
            texture=texture_index(main), sphere_texture=texture_index(sphere),
            sphere_mode=(2 if sphere.lower().endswith(".spa") else 1) if sphere else 0,
            toon_shared=toon != 0xFF, toon=toon if toon != 0xFF else -1,
            index_count=int(r["index_count"]),
        ))
    return tuple(materials), tuple(textures)


def parse_pmd(data: bytes, source: str = "<bytes>") -> PmxModel:
    """Parse PMD bytes into a PmxModel (header version 2.0, Shift_JIS texts decoded)."""
    r = _PmdReader(bytes(data), source)
    cur = r.cur
    cur.expect_header(b"Pmd", (1.0,))
    name, comment = _text(cur.take(20)), _text(cur.take(256))

    cur.section = "vertices"
    n = r.u32_count("vertex", _VERTEX.itemsize)
    vertex_start = cur.pos
    vertex_records = cur.records(_VERTEX, n)

    cur.section = "faces"
    n_faces = r.u32_count("face index", 2)
    if n_faces % 3:
        raise cur.error(f"face index count {n_faces} is not a multiple of 3")
    start = cur.pos
    faces = cur.records(np.dtype("<u2"), n_faces)
    r.check(faces[:, None], n, "face vertex", start, 2)

    cur.section = "materials"
    material_start = cur.pos
    material_records = cur.records(_MATERIAL, r.u32_count("material", _MATERIAL.itemsize))
    uneven = np.flatnonzero(material_records["index_count"] % 3)
    if uneven.size:  # a material owns whole triangles (the PMX reader refuses this too)
        i = int(uneven[0])
        raise cur.error(f"material {i + 1} uses {int(material_records['index_count'][i])} face indices, "
                        "not a multiple of 3", material_start + 4 + i * _MATERIAL.itemsize
                        + _MATERIAL.fields["index_count"][1])
    if int(material_records["index_count"].sum()) > n_faces:
        raise cur.error(f"materials use {int(material_records['index_count'].sum())} face indices, "
                        f"the model has {n_faces}", material_start)
    materials, textures = _materials(material_records)

    cur.section = "bones"
    n_bones = r.u16()
    bone_rows = [cur.unpack(_BONE) for _ in range(n_bones)]
    cur.section = "vertices"
    r.check(vertex_records["bones"], n_bones, "vertex bone", vertex_start, _VERTEX.itemsize, 32)

    cur.section = "ik"
    iks = {}
    for _ in range(r.u16()):
        at = cur.pos
        bone, target, length, iterations, limit = cur.unpack(_IK)
        chain = struct.unpack(f"<{length}H", cur.take(2 * length))
        if max((bone, target, *chain)) >= n_bones:
            raise cur.error("IK bone index out of range", at, f"valid 0..{n_bones - 1}")
        # PMD's per-iteration limit is in units of 4 radians (as PMX converters scale it)
        iks[bone] = Ik(target, iterations, limit * 4.0, tuple(IkLink(b) for b in chain))

    cur.section = "morphs"
    morph_rows = []
    for _ in range(r.u16()):
        morph_name = _text(cur.take(20))
        count = r.u32_count(f"offset of morph '{morph_name}'", _MORPH_VERTEX.itemsize)
        panel = cur.u8()
        start = cur.pos
        morph_rows.append((morph_name, panel, start, cur.records(_MORPH_VERTEX, count)))
    morphs = _morphs(r, morph_rows, n)

    names_en = _english(r, n_bones, len(morph_rows))
    bones = _bones(bone_rows, iks, names_en["bones"])
    morphs = tuple(Morph(m.name, en, m.panel, m.kind, m.offsets) for m, en in zip(morphs, names_en["morphs"]))
    return PmxModel(
        header=PmxHeader(version=2.0, encoding="utf-16-le"),
        info=ModelInfo(name, names_en["name"], comment, names_en["comment"]),
        vertices=_vertices(vertex_records), faces=faces.astype(np.int32).reshape(-1, 3), textures=textures,
        materials=materials, bones=bones, morphs=morphs,
    )


def _morphs(r: _PmdReader, rows: list, n_vertices: int) -> list[Morph]:
    """Vertex morphs; PMD's non-base morphs index into the base morph's vertex list."""
    if not rows:
        return []
    base_name, base_panel, base_start, base = rows[0]
    if base_panel != 0:
        raise r.cur.error(f"first morph '{base_name}' is not the base morph (type {base_panel})", base_start - 1)
    r.check(base["index"][:, None], n_vertices, "base morph vertex", base_start, _MORPH_VERTEX.itemsize)
    morphs = []
    for name, panel, start, offsets in rows[1:]:
        r.check(offsets["index"][:, None], len(base), f"morph '{name}' base", start, _MORPH_VERTEX.itemsize)
        table = np.zeros(len(offsets), dtype=morph_offset_dtype(MorphKind.VERTEX))
        table["index"] = base["index"][offsets["index"]]
        table["offset"] = offsets["offset"]
        morphs.append(Morph(name, "", panel, MorphKind.VERTEX, table))
    return morphs


def _english(r: _PmdReader, n_bones: int, n_morphs: int) -> dict:
    """Skip the display lists and read the optional English names (absent in many files)."""
    cur = r.cur
    names = {"name": "", "comment": "", "bones": [""] * n_bones, "morphs": [""] * max(n_morphs - 1, 0)}
    cur.section = "display lists"
    if not cur.remaining():
        return names
    cur.take(2 * cur.u8())  # morph display list
    n_frames = cur.u8()
    cur.take(50 * n_frames)  # bone frame names
    cur.take(3 * r.u32_count("bone display", 3))
    cur.section = "english names"
    if not cur.remaining() or cur.u8() == 0:
        return names
    names["name"], names["comment"] = _text(cur.take(20)), _text(cur.take(256))
    names["bones"] = [_text(cur.take(20)) for _ in range(n_bones)]
    names["morphs"] = [_text(cur.take(20)) for _ in range(max(n_morphs - 1, 0))]
    cur.take(50 * n_frames)  # English frame names; toon textures and physics follow, not kept
    return names


def _bones(rows: list[tuple], iks: dict[int, Ik], names_en: list[str]) -> tuple[Bone, ...]:
    n = len(rows)
    bones = []
    for i, (raw_name, parent, tail, kind, ik_parent, x, y, z) in enumerate(rows):
        flags = BoneFlag.ROTATABLE | BoneFlag.ENABLED
        flags |= BoneFlag.VISIBLE if kind != _BONE_HIDDEN else 0
        flags |= BoneFlag.TRANSLATABLE if kind == _BONE_TRANSLATABLE else 0
        has_tail = 0 < tail < n
        flags |= BoneFlag.TAIL_IS_BONE if has_tail else 0
        inherit = None
        if kind == _BONE_INHERIT and ik_parent < n:
            flags |= BoneFlag.INHERIT_ROTATION
            inherit = (ik_parent, 1.0)
        ik = iks.get(i)
        flags |= BoneFlag.IK if ik else 0
        bones.append(Bone(
            _text(raw_name), names_en[i], (x, y, z), -1 if parent == _NO_BONE or parent >= n else parent, 0,
            flags, tail if has_tail else (0.0, 0.0, 0.0), inherit, ik=ik,
        ))
    return tuple(bones)


def read_pmd(path: str | os.PathLike) -> PmxModel:
    """Read a .pmd file. OSError when it cannot be opened, PmxError when it is malformed."""
    path = Path(path)
    return parse_pmd(path.read_bytes(), source=path.name)


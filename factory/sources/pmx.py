"""PMX 2.0 / 2.1 reader (numpy, no bpy).

`read_pmx(path)` / `parse_pmx(data)` return a `PmxModel`. Vertex records vary
in size (the weight block depends on a per-vertex type byte), so one cheap
Python pass finds where each vertex starts and numpy then gathers every field
of all vertices at once; morph offsets, faces and other fixed-size records
are read straight into structured arrays.

Every problem with the bytes raises `PmxError`, whose message names the file,
the section and the byte offset; no IndexError, struct.error or
UnicodeDecodeError escapes. Counts are checked against the bytes left before
anything is allocated, and every index is checked against its table.
Invalid text bytes decode to U+FFFD instead of failing: names in real models
are often slightly broken and the rest of the model is still usable.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from factory.sources.pmx_model import (
    ENCODINGS,
    MAX_ADDITIONAL_UVS,
    SUPPORTED_VERSIONS,
    Bone,
    BoneFlag,
    DisplayFrame,
    Ik,
    IkLink,
    IndexKind,
    Joint,
    Material,
    ModelInfo,
    Morph,
    MorphKind,
    PmxHeader,
    PmxModel,
    RigidBody,
    Vertices,
    WeightType,
    index_dtype,
    morph_index_kind,
    morph_offset_dtype,
    weight_dtype,
)

__all__ = ["PmxError", "PmxModel", "parse_pmx", "read_pmx"]

_STRUCT_CODES = {"u1": "B", "u2": "H", "i1": "b", "i2": "h", "i4": "i"}


class PmxError(ValueError):
    """A model file that cannot be read; the message says where and why."""

    def __init__(self, source: str, section: str, offset: int, problem: str, detail: str = "", fmt: str = "PMX"):
        self.source, self.section, self.offset, self.problem = source, section, offset, problem
        tail = f" ({detail})" if detail else ""
        super().__init__(f"bad {fmt} file {source}: {problem} in section '{section}' at offset {offset}{tail}")


class ByteCursor:
    """Bounds-checked little-endian reads over file bytes; knows its section (shared with the PMD reader)."""

    def __init__(self, data: bytes, source: str, fmt: str = "PMX"):
        self.data = data
        self.array = np.frombuffer(data, dtype=np.uint8)
        self.source = source
        self.fmt = fmt
        self.pos = 0
        self.section = "header"

    def error(self, problem: str, offset: int | None = None, detail: str = "") -> PmxError:
        """A PmxError at `offset` (default: the current position)."""
        at = self.pos if offset is None else offset
        return PmxError(self.source, self.section, at, problem, detail, self.fmt)

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def need(self, n: int) -> None:
        """Fail unless `n` more bytes exist."""
        if n > self.remaining():
            raise self.error("truncated", detail=f"need {n} bytes, have {self.remaining()}")

    def take(self, n: int) -> bytes:
        self.need(n)
        start, self.pos = self.pos, self.pos + n
        return self.data[start : self.pos]

    def unpack(self, fmt: struct.Struct) -> tuple:
        return fmt.unpack(self.take(fmt.size))

    def u8(self) -> int:
        return self.take(1)[0]

    def i32(self) -> int:
        return _I32.unpack(self.take(4))[0]

    def expect_header(self, magic: bytes, versions: tuple[float, ...]) -> float:
        """Check a file's magic and float version (PMX and PMD share this shape)."""
        if not self.data:
            raise self.error("empty file (0 bytes)")
        found = self.take(len(magic))
        if found != magic:
            raise self.error(f"wrong magic {found!r}", 0, f"expected {magic!r}")
        at = self.pos
        version = round(self.f32(), 3)
        if version not in versions:
            raise self.error(f"unsupported version {version:g}", at, "supported: " + ", ".join(f"{v:g}" for v in versions))
        return version

    def f32(self) -> float:
        return _F32.unpack(self.take(4))[0]

    def vec(self, n: int) -> tuple[float, ...]:
        return struct.unpack(f"<{n}f", self.take(4 * n))

    def count(self, what: str, min_record: int) -> int:
        """Read an int32 count and refuse one the remaining bytes cannot hold."""
        at = self.pos
        n = self.i32()
        if n < 0:
            raise self.error(f"negative {what} count {n}", at)
        if n * min_record > self.remaining():
            raise self.error(f"truncated or absurd {what} count {n}", at,
                             f"needs at least {n * min_record} bytes, have {self.remaining()}")
        return n

    def records(self, dtype: np.dtype, n: int) -> np.ndarray:
        """n packed records of `dtype` as a (copied, writable) array."""
        raw = self.take(dtype.itemsize * n)
        return np.frombuffer(raw, dtype=dtype, count=n).copy()


@dataclass(frozen=True)
class _IndexCheck:
    """Indices stored every `stride` bytes from `start`, to be range-checked."""

    values: np.ndarray
    what: str
    start: int
    stride: int


_I32 = struct.Struct("<i")
_F32 = struct.Struct("<f")


class _Reader:
    """Reads one PMX file section by section (header first)."""

    def __init__(self, data: bytes, source: str):
        self.cur = ByteCursor(data, source)
        self.header = PmxHeader()
        self.encoding = "utf-16-le"
        self.pending_impulses: list[_IndexCheck] = []

    # -- primitives that need the header ---------------------------------
    def text(self) -> str:
        at = self.cur.pos
        n = self.cur.i32()
        if n < 0 or n > self.cur.remaining():
            raise self.cur.error(f"bad text length {n}", at, f"have {self.cur.remaining()} bytes")
        return self.cur.take(n).decode(self.encoding, errors="replace")

    def size(self, kind: IndexKind) -> int:
        return self.header.index_size(kind)

    def index(self, kind: IndexKind, limit: int, what: str, allow_none: bool = True) -> int:
        """Read one index of `kind` and check -1 (when allowed) <= i < limit."""
        at = self.cur.pos
        code = _STRUCT_CODES[index_dtype(kind, self.size(kind)).str[1:]]
        value = struct.unpack("<" + code, self.cur.take(self.size(kind)))[0]
        _check_index(self.cur, value, limit, what, allow_none, at)
        return value

    def check_indices(
        self, values: np.ndarray, limit: int, what: str, offset_of: Callable[[int], int], allow_none: bool = True
    ) -> None:
        """Vectorised range check; reports the offset of the first bad value (flat position)."""
        low = -1 if allow_none else 0
        bad = np.flatnonzero((values < low) | (values >= limit))
        if bad.size:
            first = int(bad[0])
            _check_index(self.cur, int(values.flat[first]), limit, what, allow_none, offset_of(first))

    # -- sections --------------------------------------------------------
    def header_section(self) -> None:
        cur = self.cur
        version = cur.expect_header(b"PMX ", SUPPORTED_VERSIONS)
        at = cur.pos
        n_globals = cur.u8()
        if n_globals < 8:
            raise cur.error(f"header declares {n_globals} globals, need 8", at)
        at = cur.pos
        g = cur.take(n_globals)  # globals beyond 8 are reserved; skipped
        if g[0] not in ENCODINGS:
            raise cur.error(f"unknown text encoding {g[0]}", at)
        if g[1] > MAX_ADDITIONAL_UVS:
            raise cur.error(f"additional UV count {g[1]} > {MAX_ADDITIONAL_UVS}", at + 1)
        for i, size in enumerate(g[2:8]):
            if size not in (1, 2, 4):
                raise cur.error(f"{IndexKind(i).name.lower()} index size {size} not in 1, 2, 4", at + 2 + i)
        self.header = PmxHeader(version, ENCODINGS[g[0]], g[1], tuple(g[2:8]))
        self.encoding = self.header.encoding

    def info_section(self) -> ModelInfo:
        return ModelInfo(self.text(), self.text(), self.text(), self.text())

    def vertices_section(self) -> tuple[Vertices, np.ndarray]:
        """Vertices, plus each vertex's start offset (to locate bad bone indices later)."""
        cur = self.cur
        n_uv = self.header.additional_uv_count
        prefix = 32 + 16 * n_uv  # position, normal, uv, additional uvs
        bone_size = self.size(IndexKind.BONE)
        layouts = [weight_dtype(t, bone_size) for t in WeightType]
        record_sizes = [prefix + 1 + d.itemsize + 4 for d in layouts]
        n = cur.count("vertex", min(record_sizes))
        starts, types = self._vertex_starts(n, prefix, record_sizes)

        data = cur.array
        block = _gather(data, starts, prefix).view("<f4")
        types_arr = np.asarray(types, dtype=np.uint8)
        bone_indices = np.full((n, 4), -1, dtype=np.int32)
        bone_weights = np.zeros((n, 4), dtype=np.float32)
        sdef = np.zeros((n, 3, 3), dtype=np.float32)
        for weight_type, layout in zip(WeightType, layouts):
            rows = np.flatnonzero(types_arr == weight_type)
            if rows.size:
                recs = _gather(data, starts[rows] + prefix + 1, layout.itemsize).view(layout)[:, 0]
                _unpack_weights(weight_type, recs, rows, bone_indices, bone_weights, sdef)
        weight_sizes = np.array([d.itemsize for d in layouts])
        edge = _gather(data, starts + prefix + 1 + weight_sizes[types_arr], 4).view("<f4")[:, 0]
        vertices = Vertices(
            positions=np.ascontiguousarray(block[:, 0:3]),
            normals=np.ascontiguousarray(block[:, 3:6]),
            uvs=np.ascontiguousarray(block[:, 6:8]),
            additional_uvs=np.ascontiguousarray(block[:, 8:].reshape(n, n_uv, 4)),
            weight_types=types_arr,
            bone_indices=bone_indices,
            bone_weights=bone_weights,
            sdef=sdef,
            edge_scales=edge.copy(),
        )
        return vertices, starts

    def _vertex_starts(self, n: int, prefix: int, record_sizes: list[int]) -> tuple[np.ndarray, list[int]]:
        """Walk the variable-size vertex records: the one sequential pass."""
        cur = self.cur
        data, end, pos = cur.data, len(cur.data), cur.pos
        starts: list[int] = [0] * n
        types: list[int] = [0] * n
        for i in range(n):  # invariant: pos <= end, so "have" is never negative
            if pos + prefix >= end:
                raise cur.error(f"truncated at vertex {i} of {n}", pos, f"need {prefix + 1} bytes, have {end - pos}")
            t = data[pos + prefix]
            if t >= len(record_sizes):
                raise cur.error(f"unknown weight type {t} at vertex {i}", pos + prefix)
            if pos + record_sizes[t] > end:  # this record, not the next one, runs past the end
                raise cur.error(f"truncated at vertex {i} of {n}", pos,
                                f"need {record_sizes[t]} bytes, have {end - pos}")
            starts[i], types[i] = pos, t
            pos += record_sizes[t]
        cur.pos = pos
        return np.asarray(starts, dtype=np.int64), types

    def check_vertex_bones(self, vertices: Vertices, starts: np.ndarray, n_bones: int) -> None:
        """Vertex bone indices can only be checked once the bone count is known."""
        bone_size = self.size(IndexKind.BONE)
        prefix = 32 + 16 * self.header.additional_uv_count
        used = vertices.bone_weights != 0  # padding and zero-weight slots may hold -1
        values = np.where(used, vertices.bone_indices, 0)
        self.cur.section = "vertices"
        self.check_indices(
            values, n_bones, "vertex bone", lambda flat: int(starts[flat // 4]) + prefix + 1 + (flat % 4) * bone_size,
            allow_none=False,
        )

    def faces_section(self, n_vertices: int) -> np.ndarray:
        cur = self.cur
        size = self.size(IndexKind.VERTEX)
        at = cur.pos
        n = cur.count("face index", size)
        if n % 3:
            raise cur.error(f"face index count {n} is not a multiple of 3", at)
        start = cur.pos
        flat = cur.records(index_dtype(IndexKind.VERTEX, size), n).astype(np.int32)
        self.check_indices(flat, n_vertices, "face vertex", lambda i: start + i * size, allow_none=False)
        return flat.reshape(-1, 3)

    def textures_section(self) -> tuple[str, ...]:
        return tuple(self.text() for _ in range(self.cur.count("texture", 4)))

    def materials_section(self, n_textures: int, n_face_indices: int) -> tuple[Material, ...]:
        cur = self.cur
        tex = self.size(IndexKind.TEXTURE)
        n = cur.count("material", 8 + 16 + 12 + 4 + 12 + 1 + 16 + 4 + 2 * tex + 3 + 4 + 4)
        materials, used = [], 0
        for _ in range(n):
            name, name_en = self.text(), self.text()
            diffuse, specular, strength, ambient = cur.vec(4), cur.vec(3), cur.f32(), cur.vec(3)
            flags, edge_color, edge_size = cur.u8(), cur.vec(4), cur.f32()
            texture = self.index(IndexKind.TEXTURE, n_textures, "material texture")
            sphere = self.index(IndexKind.TEXTURE, n_textures, "material sphere texture")
            sphere_mode, toon_shared = cur.u8(), cur.u8()
            toon = cur.u8() if toon_shared else self.index(IndexKind.TEXTURE, n_textures, "material toon texture")
            memo = self.text()
            at = cur.pos
            index_count = cur.i32()
            if index_count < 0 or index_count % 3 or used + index_count > n_face_indices:
                raise cur.error(
                    f"material '{name}' uses {index_count} face indices, {n_face_indices - used} remain", at
                )
            used += index_count
            materials.append(
                Material(name, name_en, diffuse, specular, strength, ambient, flags, edge_color, edge_size,
                         texture, sphere, sphere_mode, bool(toon_shared), toon, memo, index_count)
            )
        return tuple(materials)

    def bones_section(self) -> tuple[Bone, ...]:
        cur = self.cur
        bone = self.size(IndexKind.BONE)
        n = cur.count("bone", 8 + 12 + bone + 4 + 2 + bone)
        return tuple(self._bone(n) for _ in range(n))

    def _bone(self, n: int) -> Bone:
        cur, B = self.cur, IndexKind.BONE
        name, name_en = self.text(), self.text()
        position = cur.vec(3)
        parent = self.index(B, n, "bone parent")
        layer = cur.i32()
        flags = BoneFlag(struct.unpack("<H", cur.take(2))[0])
        tail = self.index(B, n, "bone tail") if flags & BoneFlag.TAIL_IS_BONE else cur.vec(3)
        inherit = None
        if flags & (BoneFlag.INHERIT_ROTATION | BoneFlag.INHERIT_TRANSLATION):
            inherit = (self.index(B, n, "bone inherit parent"), cur.f32())
        fixed_axis = cur.vec(3) if flags & BoneFlag.FIXED_AXIS else None
        local_axes = (cur.vec(3), cur.vec(3)) if flags & BoneFlag.LOCAL_AXES else None
        external = cur.i32() if flags & BoneFlag.EXTERNAL_PARENT else None
        ik = self._ik(n) if flags & BoneFlag.IK else None
        return Bone(name, name_en, position, parent, layer, flags, tail, inherit, fixed_axis, local_axes, external, ik)

    def _ik(self, n_bones: int) -> Ik:
        cur, B = self.cur, IndexKind.BONE
        target = self.index(B, n_bones, "IK target", allow_none=False)
        loop_count, limit_angle = cur.i32(), cur.f32()
        n_links = cur.count("IK link", self.size(B) + 1)
        links = []
        for _ in range(n_links):
            bone = self.index(B, n_bones, "IK link", allow_none=False)
            limits = (cur.vec(3), cur.vec(3)) if cur.u8() else None
            links.append(IkLink(bone, limits))
        return Ik(target, loop_count, limit_angle, tuple(links))

    def morphs_section(self, limits: dict[IndexKind, int]) -> tuple[Morph, ...]:
        cur = self.cur
        n = cur.count("morph", 8 + 1 + 1 + 4)
        limits = {**limits, IndexKind.MORPH: n}
        return tuple(self._morph(limits) for _ in range(n))

    def _morph(self, limits: dict[IndexKind, int]) -> Morph:
        cur = self.cur
        name, name_en = self.text(), self.text()
        panel = cur.u8()
        at = cur.pos
        kind_byte = cur.u8()
        if kind_byte not in MorphKind._value2member_map_:
            raise cur.error(f"unknown morph type {kind_byte} in morph '{name}'", at)
        kind = MorphKind(kind_byte)
        index_kind = morph_index_kind(kind)
        file_dtype = morph_offset_dtype(kind, self.size(index_kind))
        n = cur.count(f"offset of morph '{name}'", file_dtype.itemsize)
        start = cur.pos
        offsets = cur.records(file_dtype, n).astype(morph_offset_dtype(kind))
        what = f"morph '{name}' {index_kind.name.lower().replace('_', ' ')}"
        check = _IndexCheck(offsets["index"], what, start, file_dtype.itemsize)
        if index_kind is IndexKind.RIGID_BODY:  # rigid bodies are counted later: checked then
            self.pending_impulses.append(check)
        else:
            self.run_check(check, limits[index_kind], allow_none=kind is MorphKind.MATERIAL)  # -1 = all materials
        return Morph(name, name_en, panel, kind, offsets)

    def display_frames_section(self, n_bones: int, n_morphs: int) -> tuple[DisplayFrame, ...]:
        cur = self.cur
        n = cur.count("display frame", 8 + 1 + 4)
        frames = []
        for _ in range(n):
            name, name_en, special = self.text(), self.text(), bool(cur.u8())
            n_items = cur.count("display frame item", 1 + 1)
            items = []
            for _ in range(n_items):
                at = cur.pos
                target = cur.u8()
                if target == 0:
                    items.append((0, self.index(IndexKind.BONE, n_bones, "display frame bone", allow_none=False)))
                elif target == 1:
                    items.append((1, self.index(IndexKind.MORPH, n_morphs, "display frame morph", allow_none=False)))
                else:
                    raise cur.error(f"unknown display frame item type {target}", at)
            frames.append(DisplayFrame(name, name_en, special, tuple(items)))
        return tuple(frames)

    def rigid_bodies_section(self, n_bones: int) -> tuple[RigidBody, ...]:
        cur = self.cur
        n = cur.count("rigid body", 8 + self.size(IndexKind.BONE) + _RIGID_TAIL.size)
        bodies = []
        for _ in range(n):
            name, name_en = self.text(), self.text()
            bone = self.index(IndexKind.BONE, n_bones, "rigid body bone")
            v = cur.unpack(_RIGID_TAIL)
            bodies.append(RigidBody(name, name_en, bone, v[0], v[1], v[2], v[3:6], v[6:9], v[9:12], *v[12:18]))
        return tuple(bodies)

    def joints_section(self, n_bodies: int) -> tuple[Joint, ...]:
        cur = self.cur
        rigid = self.size(IndexKind.RIGID_BODY)
        n = cur.count("joint", 8 + 1 + 2 * rigid + 96)
        joints = []
        for _ in range(n):
            name, name_en = self.text(), self.text()
            at = cur.pos
            kind = cur.u8()
            if kind > 5:  # 0 = 6DOF spring (2.0); 2.1 adds types 1-5 with the same layout
                raise cur.error(f"unknown joint type {kind}", at)
            a = self.index(IndexKind.RIGID_BODY, n_bodies, "joint rigid body A")
            b = self.index(IndexKind.RIGID_BODY, n_bodies, "joint rigid body B")
            v = cur.vec(24)
            joints.append(Joint(name, name_en, kind, a, b, *(tuple(v[i : i + 3]) for i in range(0, 24, 3))))
        return tuple(joints)

    def check_impulses(self, n_bodies: int) -> None:
        """Impulse morphs name rigid bodies, which are only counted after the morphs."""
        self.cur.section = "morphs"
        for check in self.pending_impulses:
            self.run_check(check, n_bodies, allow_none=False)

    def run_check(self, check: _IndexCheck, limit: int, allow_none: bool) -> None:
        self.check_indices(check.values, limit, check.what, lambda i: check.start + i * check.stride, allow_none)


_RIGID_TAIL = struct.Struct("<BHB3f3f3f5fB")


def _check_index(cur: ByteCursor, value: int, limit: int, what: str, allow_none: bool, offset: int) -> None:
    low = -1 if allow_none else 0
    if not low <= value < limit:
        raise cur.error(f"{what} index {value} out of range", offset, f"valid {low}..{limit - 1}")


def _gather(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Bytes [start, start + width) for every start, as an (n, width) C-contiguous uint8 array."""
    return data[starts[:, None] + np.arange(width)]


def _unpack_weights(
    weight_type: WeightType,
    recs: np.ndarray,
    rows: np.ndarray,
    bone_indices: np.ndarray,
    bone_weights: np.ndarray,
    sdef: np.ndarray,
) -> None:
    """Spread one weight type's records into the padded (N, 4) tables."""
    bones = recs["bones"].astype(np.int32)
    bone_indices[rows, : bones.shape[1]] = bones
    if weight_type is WeightType.BDEF1:
        bone_weights[rows, 0] = 1.0
        return
    weights = recs["weights"]
    if weights.shape[1] == 1:  # BDEF2 / SDEF store only the first weight
        bone_weights[rows, 0] = weights[:, 0]
        bone_weights[rows, 1] = 1.0 - weights[:, 0]
    else:
        bone_weights[rows] = weights
    if weight_type is WeightType.SDEF:
        sdef[rows] = recs["sdef"]


def parse_pmx(data: bytes, source: str = "<bytes>") -> PmxModel:
    """Parse PMX bytes into a PmxModel; `source` names the file in error messages."""
    r = _Reader(bytes(data), source)
    cur = r.cur
    r.header_section()
    cur.section = "model info"
    info = r.info_section()
    cur.section = "vertices"
    vertices, starts = r.vertices_section()
    cur.section = "faces"
    faces = r.faces_section(len(vertices))
    cur.section = "textures"
    textures = r.textures_section()
    cur.section = "materials"
    materials = r.materials_section(len(textures), faces.size)
    cur.section = "bones"
    bones = r.bones_section()
    r.check_vertex_bones(vertices, starts, len(bones))
    cur.section = "morphs"
    limits = {IndexKind.VERTEX: len(vertices), IndexKind.BONE: len(bones), IndexKind.MATERIAL: len(materials)}
    morphs = r.morphs_section(limits)
    cur.section = "display frames"
    frames = r.display_frames_section(len(bones), len(morphs))
    cur.section = "rigid bodies"
    bodies = r.rigid_bodies_section(len(bones))
    cur.section = "joints"
    joints = r.joints_section(len(bodies))
    r.check_impulses(len(bodies))
    return PmxModel(r.header, info, vertices, faces, textures, materials, bones, morphs, frames, bodies, joints)


def read_pmx(path: str | os.PathLike) -> PmxModel:
    """Read a .pmx file. OSError when it cannot be opened, PmxError when it is malformed."""
    path = Path(path)
    return parse_pmx(path.read_bytes(), source=path.name)

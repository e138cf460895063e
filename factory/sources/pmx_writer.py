"""PMX writer: serialises a `PmxModel` (used to make synthetic test models).

Index sizes are chosen from the table sizes (the smallest that fits), and the
version is 2.1 only when the model uses a 2.1 feature (QDEF weights, flip or
impulse morphs) or its header asks for 2.1; otherwise 2.0. Vertices are laid
out with numpy: record sizes are known up front, so their start offsets are a
cumulative sum and every field is scattered into one byte buffer at once.

`reorder_bones` lists a model's bones in another order, every bone reference
remapped: real models list bones out of hierarchy order (children before
parents), and the synthetic characters do too, so code that pairs a PMX bone
index with a position in some other bone list is caught by the tests.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from factory.sources.pmx_model import (
    ENCODINGS,
    VERSION_21_MORPHS,
    VERSION_21_WEIGHTS,
    Bone,
    BoneFlag,
    Ik,
    IkLink,
    IndexKind,
    Material,
    Morph,
    PmxHeader,
    PmxModel,
    Vertices,
    WeightType,
    index_dtype,
    morph_index_kind,
    morph_offset_dtype,
    weight_dtype,
)

__all__ = ["pmx_bytes", "reorder_bones", "write_pmx"]

_CODEC_BYTE = {codec: byte for byte, codec in ENCODINGS.items()}


def _index_size(kind: IndexKind, count: int) -> int:
    """Smallest index size holding indices 0..count-1 (and -1 for signed kinds)."""
    top = count - 1
    for size in (1, 2):
        info = np.iinfo(index_dtype(kind, size))
        if top <= info.max:
            return size
    return 4


def _header_for(model: PmxModel) -> PmxHeader:
    counts = {
        IndexKind.VERTEX: len(model.vertices),
        IndexKind.TEXTURE: len(model.textures),
        IndexKind.MATERIAL: len(model.materials),
        IndexKind.BONE: len(model.bones),
        IndexKind.MORPH: len(model.morphs),
        IndexKind.RIGID_BODY: len(model.rigid_bodies),
    }
    uses_21 = bool(set(np.unique(model.vertices.weight_types).tolist()) & VERSION_21_WEIGHTS) or any(
        m.kind in VERSION_21_MORPHS for m in model.morphs
    )
    version = 2.1 if uses_21 or model.header.version > 2.05 else 2.0
    sizes = tuple(_index_size(kind, counts[kind]) for kind in IndexKind)
    return PmxHeader(version, model.header.encoding, model.vertices.additional_uvs.shape[1], sizes)


class _Out:
    """Accumulates little-endian fields for one file."""

    def __init__(self, header: PmxHeader):
        self.header = header
        self.chunks: list[bytes] = []

    def raw(self, data: bytes) -> None:
        self.chunks.append(data)

    def pack(self, fmt: str, *values) -> None:
        self.chunks.append(struct.pack("<" + fmt, *values))

    def vec(self, values) -> None:
        self.pack(f"{len(values)}f", *values)

    def text(self, value: str) -> None:
        data = value.encode(self.header.encoding)
        self.pack("i", len(data))
        self.chunks.append(data)

    def index(self, kind: IndexKind, value: int) -> None:
        self.chunks.append(np.array([value], dtype=index_dtype(kind, self.header.index_size(kind))).tobytes())


def _scatter(out: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """Write row i of the (n, width) uint8 array `rows` at out[starts[i]:]."""
    out[starts[:, None] + np.arange(rows.shape[1])] = rows


def _as_bytes(array: np.ndarray) -> np.ndarray:
    """(n, ...) array -> (n, row bytes) uint8 view of a contiguous copy."""
    array = np.ascontiguousarray(array)
    return array.view(np.uint8).reshape(len(array), -1)


def _vertex_bytes(v: Vertices, header: PmxHeader) -> bytes:
    n, k = len(v), header.additional_uv_count
    prefix = 32 + 16 * k
    layouts = [weight_dtype(t, header.index_size(IndexKind.BONE)) for t in WeightType]
    weight_sizes = np.array([d.itemsize for d in layouts])
    types = v.weight_types.astype(np.intp)
    sizes = prefix + 1 + weight_sizes[types] + 4
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    block = np.concatenate([v.positions, v.normals, v.uvs, v.additional_uvs.reshape(n, 4 * k)], axis=1)
    _scatter(out, starts, _as_bytes(block.astype("<f4")))
    out[starts + prefix] = types
    for weight_type, layout in zip(WeightType, layouts):
        rows = np.flatnonzero(types == weight_type)
        if rows.size:
            _scatter(out, starts[rows] + prefix + 1, _as_bytes(_pack_weights(weight_type, layout, v, rows)))
    _scatter(out, starts + prefix + 1 + weight_sizes[types], _as_bytes(v.edge_scales.astype("<f4")[:, None]))
    return out.tobytes()


def _pack_weights(weight_type: WeightType, layout: np.dtype, v: Vertices, rows: np.ndarray) -> np.ndarray:
    recs = np.zeros(len(rows), dtype=layout)
    recs["bones"] = v.bone_indices[rows, : layout["bones"].shape[0]]
    if "weights" in layout.names:
        recs["weights"] = v.bone_weights[rows, : layout["weights"].shape[0]]
    if weight_type is WeightType.SDEF:
        recs["sdef"] = v.sdef[rows]
    return recs


def _material(out: _Out, m: Material) -> None:
    T = IndexKind.TEXTURE
    out.text(m.name)
    out.text(m.name_en)
    out.vec(m.diffuse)
    out.vec(m.specular)
    out.pack("f", m.specular_strength)
    out.vec(m.ambient)
    out.pack("B", m.flags)
    out.vec(m.edge_color)
    out.pack("f", m.edge_size)
    out.index(T, m.texture)
    out.index(T, m.sphere_texture)
    out.pack("BB", m.sphere_mode, int(m.toon_shared))
    if m.toon_shared:
        out.pack("B", m.toon)
    else:
        out.index(T, m.toon)
    out.text(m.memo)
    out.pack("i", m.index_count)


def _require(value, flag: BoneFlag, bone: Bone):
    if value is None:
        raise ValueError(f"bone '{bone.name}' has flag {flag.name} but no value for it")
    return value


def _bone(out: _Out, b: Bone) -> None:
    B = IndexKind.BONE
    out.text(b.name)
    out.text(b.name_en)
    out.vec(b.position)
    out.index(B, b.parent)
    out.pack("iH", b.layer, int(b.flags))
    if b.flags & BoneFlag.TAIL_IS_BONE:
        if not isinstance(b.tail, int):
            raise ValueError(f"bone '{b.name}' has flag TAIL_IS_BONE but its tail is not a bone index")
        out.index(B, b.tail)
    else:
        out.vec(b.tail)
    if b.flags & (BoneFlag.INHERIT_ROTATION | BoneFlag.INHERIT_TRANSLATION):
        parent, weight = _require(b.inherit, BoneFlag.INHERIT_ROTATION, b)
        out.index(B, parent)
        out.pack("f", weight)
    if b.flags & BoneFlag.FIXED_AXIS:
        out.vec(_require(b.fixed_axis, BoneFlag.FIXED_AXIS, b))
    if b.flags & BoneFlag.LOCAL_AXES:
        x_axis, z_axis = _require(b.local_axes, BoneFlag.LOCAL_AXES, b)
        out.vec(x_axis)
        out.vec(z_axis)
    if b.flags & BoneFlag.EXTERNAL_PARENT:
        out.pack("i", _require(b.external_parent, BoneFlag.EXTERNAL_PARENT, b))
    if b.flags & BoneFlag.IK:
        ik = _require(b.ik, BoneFlag.IK, b)
        out.index(B, ik.target)
        out.pack("ifi", ik.loop_count, ik.limit_angle, len(ik.links))
        for link in ik.links:
            out.index(B, link.bone)
            out.pack("B", link.limits is not None)
            if link.limits is not None:
                out.vec(link.limits[0])
                out.vec(link.limits[1])


def _morph(out: _Out, m: Morph) -> None:
    out.text(m.name)
    out.text(m.name_en)
    out.pack("BBi", m.panel, int(m.kind), len(m.offsets))
    size = out.header.index_size(morph_index_kind(m.kind))
    out.raw(m.offsets.astype(morph_offset_dtype(m.kind, size)).tobytes())


def pmx_bytes(model: PmxModel) -> bytes:
    """The model as PMX file bytes."""
    if sum(m.index_count for m in model.materials) > model.faces.size:
        raise ValueError("materials use more face indices than the model has")
    header = _header_for(model)
    out = _Out(header)
    out.raw(b"PMX ")
    out.pack("fB", header.version, 8)
    out.pack("8B", _CODEC_BYTE[header.encoding], header.additional_uv_count, *header.index_sizes)
    for text in (model.info.name, model.info.name_en, model.info.comment, model.info.comment_en):
        out.text(text)

    out.pack("i", len(model.vertices))
    out.raw(_vertex_bytes(model.vertices, header))
    out.pack("i", model.faces.size)
    out.raw(model.faces.astype(index_dtype(IndexKind.VERTEX, header.index_size(IndexKind.VERTEX))).tobytes())
    out.pack("i", len(model.textures))
    for path in model.textures:
        out.text(path)
    _table(out, model.materials, _material)
    _table(out, model.bones, _bone)
    _table(out, model.morphs, _morph)
    _table(out, model.display_frames, _display_frame)
    _table(out, model.rigid_bodies, _rigid_body)
    _table(out, model.joints, _joint)
    return b"".join(out.chunks)


def _table(out: _Out, items, write_one) -> None:
    out.pack("i", len(items))
    for item in items:
        write_one(out, item)


def _display_frame(out: _Out, frame) -> None:
    out.text(frame.name)
    out.text(frame.name_en)
    out.pack("Bi", int(frame.special), len(frame.items))
    for target, index in frame.items:
        out.pack("B", target)
        out.index(IndexKind.MORPH if target else IndexKind.BONE, index)


def _rigid_body(out: _Out, body) -> None:
    out.text(body.name)
    out.text(body.name_en)
    out.index(IndexKind.BONE, body.bone)
    out.pack("BHB", body.group, body.non_collision_mask, body.shape)
    for vec in (body.size, body.position, body.rotation):
        out.vec(vec)
    out.pack("5fB", body.mass, body.linear_damping, body.angular_damping, body.restitution, body.friction, body.mode)


def _joint(out: _Out, joint) -> None:
    out.text(joint.name)
    out.text(joint.name_en)
    out.pack("B", joint.kind)
    out.index(IndexKind.RIGID_BODY, joint.rigid_a)
    out.index(IndexKind.RIGID_BODY, joint.rigid_b)
    for vec in (joint.position, joint.rotation, joint.position_min, joint.position_max,
                joint.rotation_min, joint.rotation_max, joint.position_spring, joint.rotation_spring):
        out.vec(vec)


def reorder_bones(model: PmxModel, order: Sequence[int]) -> PmxModel:
    """The model with its bones listed as `order` (new position -> old index), every reference remapped.

    Remapped: vertex weights, bone parents, tail bones, inherit parents, IK
    targets and links, bone morph offsets, display frame bone items and rigid
    body bones; -1 ("none") stays -1.
    """
    n = len(model.bones)
    if sorted(order) != list(range(n)):
        raise ValueError(f"bone order must be a permutation of 0..{n - 1}")
    new_of = np.full(n + 1, -1, dtype=np.int64)  # old index -> new; slot n (= -1) stays -1
    new_of[np.asarray(order, dtype=np.int64)] = np.arange(n)

    def remap(i: int) -> int:
        return int(new_of[i]) if 0 <= i < n else i

    def bone(b: Bone) -> Bone:
        tail = remap(b.tail) if b.flags & BoneFlag.TAIL_IS_BONE and isinstance(b.tail, int) else b.tail
        inherit = (remap(b.inherit[0]), b.inherit[1]) if b.inherit is not None else None
        ik = None
        if b.ik is not None:
            links = tuple(IkLink(remap(link.bone), link.limits) for link in b.ik.links)
            ik = Ik(remap(b.ik.target), b.ik.loop_count, b.ik.limit_angle, links)
        return dataclasses.replace(b, parent=remap(b.parent), tail=tail, inherit=inherit, ik=ik)

    v = model.vertices
    indices = v.bone_indices
    valid = (indices >= 0) & (indices < n)
    vertices = dataclasses.replace(v, bone_indices=np.where(valid, new_of[np.where(valid, indices, n)], indices)
                                   .astype(indices.dtype))
    morphs = []
    for m in model.morphs:
        if morph_index_kind(m.kind) is IndexKind.BONE:
            offsets = m.offsets.copy()
            offsets["index"] = [remap(int(i)) for i in offsets["index"]]
            m = dataclasses.replace(m, offsets=offsets)
        morphs.append(m)
    frames = tuple(dataclasses.replace(f, items=tuple((t, remap(i) if t == 0 else i) for t, i in f.items))
                   for f in model.display_frames)
    bodies = tuple(dataclasses.replace(b, bone=remap(b.bone)) for b in model.rigid_bodies)
    return dataclasses.replace(model, vertices=vertices, bones=tuple(bone(model.bones[i]) for i in order),
                               morphs=tuple(morphs), display_frames=frames, rigid_bodies=bodies)


def write_pmx(model: PmxModel, path: str | os.PathLike) -> Path:
    """Write the model to `path` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pmx_bytes(model))
    return path

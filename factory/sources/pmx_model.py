"""The in-memory PMX model and the binary layouts the reader and writer share.

Coordinates are MMD's: left-handed, Y up, the character faces -Z and its left
side is +X. Every index is an int with -1 meaning "none". Per-element arrays
(vertices, morph offsets) are numpy arrays; everything else is frozen
dataclasses holding tuples, so a parsed model cannot be changed by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np

Vec3 = tuple[float, float, float]
Vec4 = tuple[float, float, float, float]

SUPPORTED_VERSIONS = (2.0, 2.1)
ENCODINGS = {0: "utf-16-le", 1: "utf-8"}  # header byte -> Python codec
MAX_ADDITIONAL_UVS = 4


class IndexKind(IntEnum):
    """The six index types whose byte size the header declares (in header order)."""

    VERTEX = 0
    TEXTURE = 1
    MATERIAL = 2
    BONE = 3
    MORPH = 4
    RIGID_BODY = 5


class WeightType(IntEnum):
    """Vertex skinning ("weight deform") types."""

    BDEF1 = 0
    BDEF2 = 1
    BDEF4 = 2
    SDEF = 3
    QDEF = 4  # PMX 2.1


class MorphKind(IntEnum):
    """Morph (offset) types."""

    GROUP = 0
    VERTEX = 1
    BONE = 2
    UV = 3
    UV1 = 4
    UV2 = 5
    UV3 = 6
    UV4 = 7
    MATERIAL = 8
    FLIP = 9  # PMX 2.1
    IMPULSE = 10  # PMX 2.1


class MorphPanel(IntEnum):
    """The control panel a morph sits on in MMD (a hint at the face part)."""

    SYSTEM = 0
    EYEBROW = 1
    EYE = 2
    MOUTH = 3
    OTHER = 4


class BoneFlag(IntFlag):
    """Bone flag bits; several decide which optional fields follow in the file."""

    TAIL_IS_BONE = 0x0001
    ROTATABLE = 0x0002
    TRANSLATABLE = 0x0004
    VISIBLE = 0x0008
    ENABLED = 0x0010
    IK = 0x0020
    INHERIT_ROTATION = 0x0100
    INHERIT_TRANSLATION = 0x0200
    FIXED_AXIS = 0x0400
    LOCAL_AXES = 0x0800
    PHYSICS_AFTER_DEFORM = 0x1000
    EXTERNAL_PARENT = 0x2000


VERSION_21_WEIGHTS = frozenset({WeightType.QDEF})
VERSION_21_MORPHS = frozenset({MorphKind.FLIP, MorphKind.IMPULSE})


def index_dtype(kind: IndexKind, size: int) -> np.dtype:
    """numpy dtype of an index of `kind` stored in `size` bytes.

    Vertex indices of 1 and 2 bytes are unsigned (a model may have 65535
    vertices); every other index is signed so that -1 can mean "none".
    """
    unsigned = kind is IndexKind.VERTEX and size < 4
    return np.dtype(f"<{'u' if unsigned else 'i'}{size}")


# Weight block layout per type, after the type byte: (bone count, field list).
_WEIGHT_FIELDS: dict[WeightType, tuple[int, list[tuple]]] = {
    WeightType.BDEF1: (1, []),
    WeightType.BDEF2: (2, [("weights", "<f4", (1,))]),
    WeightType.BDEF4: (4, [("weights", "<f4", (4,))]),
    WeightType.SDEF: (2, [("weights", "<f4", (1,)), ("sdef", "<f4", (3, 3))]),
    WeightType.QDEF: (4, [("weights", "<f4", (4,))]),
}


def weight_dtype(weight_type: WeightType, bone_index_size: int) -> np.dtype:
    """Packed record dtype of one weight block (bones first, then floats)."""
    n_bones, fields = _WEIGHT_FIELDS[weight_type]
    bone = index_dtype(IndexKind.BONE, bone_index_size)
    return np.dtype([("bones", bone, (n_bones,)), *fields])


# Morph offset layouts: (the index kind of the first field, the other fields).
_MORPH_FIELDS: dict[MorphKind, tuple[IndexKind, list[tuple]]] = {
    MorphKind.GROUP: (IndexKind.MORPH, [("weight", "<f4")]),
    MorphKind.VERTEX: (IndexKind.VERTEX, [("offset", "<f4", (3,))]),
    MorphKind.BONE: (IndexKind.BONE, [("translation", "<f4", (3,)), ("rotation", "<f4", (4,))]),
    **{
        kind: (IndexKind.VERTEX, [("offset", "<f4", (4,))])
        for kind in (MorphKind.UV, MorphKind.UV1, MorphKind.UV2, MorphKind.UV3, MorphKind.UV4)
    },
    MorphKind.MATERIAL: (
        IndexKind.MATERIAL,
        [
            ("operation", "u1"),  # 0 multiply, 1 add
            ("diffuse", "<f4", (4,)),
            ("specular", "<f4", (3,)),
            ("specularity", "<f4"),
            ("ambient", "<f4", (3,)),
            ("edge_color", "<f4", (4,)),
            ("edge_size", "<f4"),
            ("texture_tint", "<f4", (4,)),
            ("sphere_tint", "<f4", (4,)),
            ("toon_tint", "<f4", (4,)),
        ],
    ),
    MorphKind.FLIP: (IndexKind.MORPH, [("weight", "<f4")]),
    MorphKind.IMPULSE: (
        IndexKind.RIGID_BODY,
        [("local", "u1"), ("velocity", "<f4", (3,)), ("torque", "<f4", (3,))],
    ),
}


def morph_index_kind(kind: MorphKind) -> IndexKind:
    """What the `index` field of a morph offset of this kind points at."""
    return _MORPH_FIELDS[kind][0]


def morph_offset_dtype(kind: MorphKind, index_size: int | None = None) -> np.dtype:
    """Record dtype of one morph offset.

    With `index_size` it is the packed file layout; without, the in-memory
    layout whose `index` field is always int32.
    """
    index_kind, fields = _MORPH_FIELDS[kind]
    index = np.dtype("<i4") if index_size is None else index_dtype(index_kind, index_size)
    return np.dtype([("index", index), *fields])


@dataclass(frozen=True)
class PmxHeader:
    """Format globals. Index sizes are those of the file read (1, 2 or 4 bytes)."""

    version: float = 2.0
    encoding: str = "utf-16-le"
    additional_uv_count: int = 0
    index_sizes: tuple[int, int, int, int, int, int] = (4, 4, 4, 4, 4, 4)

    def index_size(self, kind: IndexKind) -> int:
        """Byte size of indices of `kind`."""
        return self.index_sizes[kind]


@dataclass(frozen=True)
class ModelInfo:
    """Names and comments, local (usually Japanese) and universal (English)."""

    name: str = ""
    name_en: str = ""
    comment: str = ""
    comment_en: str = ""


@dataclass(frozen=True, eq=False)
class Vertices:
    """All vertices as arrays; N vertices, K additional UVs.

    bone_indices / bone_weights are padded to 4 columns (index -1, weight 0);
    BDEF1 has weight 1 in column 0, BDEF2 and SDEF have (w, 1 - w).
    sdef holds the SDEF C, R0, R1 vectors (zeros for other types).
    """

    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32
    uvs: np.ndarray  # (N, 2) float32
    additional_uvs: np.ndarray  # (N, K, 4) float32
    weight_types: np.ndarray  # (N,) uint8, WeightType values
    bone_indices: np.ndarray  # (N, 4) int32
    bone_weights: np.ndarray  # (N, 4) float32
    sdef: np.ndarray  # (N, 3, 3) float32
    edge_scales: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.positions)


@dataclass(frozen=True)
class Material:
    """One material; `index_count` face indices (3 per triangle) use it, in order."""

    name: str
    name_en: str = ""
    diffuse: Vec4 = (1.0, 1.0, 1.0, 1.0)
    specular: Vec3 = (0.0, 0.0, 0.0)
    specular_strength: float = 5.0
    ambient: Vec3 = (0.5, 0.5, 0.5)
    flags: int = 0  # bit 0 double sided, 1 ground shadow, 2/3 self shadow, 4 edge
    edge_color: Vec4 = (0.0, 0.0, 0.0, 1.0)
    edge_size: float = 1.0
    texture: int = -1
    sphere_texture: int = -1
    sphere_mode: int = 0  # 0 off, 1 multiply, 2 add, 3 additional vec4
    toon_shared: bool = True  # True: toon is one of MMD's toon01..10; False: texture index
    toon: int = 0
    memo: str = ""
    index_count: int = 0


@dataclass(frozen=True)
class IkLink:
    """One bone of an IK chain, with optional Euler angle limits (radians)."""

    bone: int
    limits: tuple[Vec3, Vec3] | None = None


@dataclass(frozen=True)
class Ik:
    """IK solver settings of an IK bone."""

    target: int
    loop_count: int
    limit_angle: float
    links: tuple[IkLink, ...] = ()


@dataclass(frozen=True)
class Bone:
    """One bone. `flags` decides which optional fields are present in the file.

    tail: a bone index when flags has TAIL_IS_BONE, else an offset vector.
    inherit: (parent bone, influence) for INHERIT_ROTATION / INHERIT_TRANSLATION.
    """

    name: str
    name_en: str = ""
    position: Vec3 = (0.0, 0.0, 0.0)
    parent: int = -1
    layer: int = 0
    flags: BoneFlag = BoneFlag.ROTATABLE | BoneFlag.VISIBLE | BoneFlag.ENABLED
    tail: int | Vec3 = (0.0, 0.0, 0.0)
    inherit: tuple[int, float] | None = None
    fixed_axis: Vec3 | None = None
    local_axes: tuple[Vec3, Vec3] | None = None
    external_parent: int | None = None
    ik: Ik | None = None


@dataclass(frozen=True, eq=False)
class Morph:
    """One morph; `offsets` is a structured array of morph_offset_dtype(kind)."""

    name: str
    name_en: str
    panel: int  # MorphPanel value (kept as int: files carry odd values)
    kind: MorphKind
    offsets: np.ndarray


@dataclass(frozen=True)
class DisplayFrame:
    """A display frame; items are (0 = bone | 1 = morph, index)."""

    name: str
    name_en: str = ""
    special: bool = False
    items: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class RigidBody:
    """A physics rigid body (kept for round trips; the renderer ignores physics)."""

    name: str
    name_en: str = ""
    bone: int = -1
    group: int = 0
    non_collision_mask: int = 0
    shape: int = 0  # 0 sphere, 1 box, 2 capsule
    size: Vec3 = (1.0, 1.0, 1.0)
    position: Vec3 = (0.0, 0.0, 0.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    mass: float = 1.0
    linear_damping: float = 0.5
    angular_damping: float = 0.5
    restitution: float = 0.0
    friction: float = 0.5
    mode: int = 0  # 0 follows bone, 1 physics, 2 physics + bone position


@dataclass(frozen=True)
class Joint:
    """A spring joint between two rigid bodies."""

    name: str
    name_en: str = ""
    kind: int = 0  # 0 spring 6DOF
    rigid_a: int = -1
    rigid_b: int = -1
    position: Vec3 = (0.0, 0.0, 0.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    position_min: Vec3 = (0.0, 0.0, 0.0)
    position_max: Vec3 = (0.0, 0.0, 0.0)
    rotation_min: Vec3 = (0.0, 0.0, 0.0)
    rotation_max: Vec3 = (0.0, 0.0, 0.0)
    position_spring: Vec3 = (0.0, 0.0, 0.0)
    rotation_spring: Vec3 = (0.0, 0.0, 0.0)


@dataclass(frozen=True, eq=False)
class PmxModel:
    """A whole PMX model. PMX 2.1 soft bodies, when present, are not kept."""

    header: PmxHeader
    info: ModelInfo
    vertices: Vertices
    faces: np.ndarray  # (M, 3) int32 vertex indices
    textures: tuple[str, ...]
    materials: tuple[Material, ...]
    bones: tuple[Bone, ...]
    morphs: tuple[Morph, ...]
    display_frames: tuple[DisplayFrame, ...] = ()
    rigid_bodies: tuple[RigidBody, ...] = ()
    joints: tuple[Joint, ...] = ()

    def bone_index(self, name: str) -> int:
        """Index of the bone called `name` (exact local name), or -1."""
        return next((i for i, b in enumerate(self.bones) if b.name == name), -1)

    def morph_index(self, name: str) -> int:
        """Index of the morph called `name` (exact local name), or -1."""
        return next((i for i, m in enumerate(self.morphs) if m.name == name), -1)

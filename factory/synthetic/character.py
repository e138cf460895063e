"""Synthetic textured MMD characters, so tests and the demo need no downloaded model.

A character is a torso, a neck and an ellipsoid head with hair, two eyes
(an iris drawn in the texture), two brows and a mouth, skinned to the bones
センター > 上半身 > 首 > 頭 (plus 両目 / 左目 / 右目), listed out of hierarchy
order as real models list them. Its vertex morphs carry
standard MMD names and really move their part: まばたき closes both eyes,
ウィンク２ the left one, あ opens the mouth, 上 raises the brows, and so on.
There is one group morph, one bone morph and, on request, a "dead" morph that
is mapped to a target but moves nothing (for the inspection step).

Coordinates are MMD's: Y up, the character faces -Z, its left is +X.
Everything random comes from the numpy Generator passed in.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from factory.sources.pmx_model import (
    Bone,
    BoneFlag,
    DisplayFrame,
    Joint,
    Material,
    ModelInfo,
    Morph,
    MorphKind,
    MorphPanel,
    PmxHeader,
    PmxModel,
    RigidBody,
    Vertices,
    WeightType,
    morph_offset_dtype,
)
from factory.sources.pmx_writer import reorder_bones, write_pmx

TEXTURE_PATH = "tex\\face.png"  # as Windows tools write it: relative, backslash
RGB = tuple[int, int, int]

# Texture atlas: 4 x 4 tiles; solid colours except the eye tile (an iris).
_ATLAS, _GRID = 128, 4
_TILES = {"skin": 0, "hair": 1, "eye": 2, "brow": 3, "mouth": 4, "cloth": 5, "blush": 6}
_HIDDEN = {"blush"}  # materials with diffuse alpha 0: drawn only while a material morph shows them

# Bones as they are built (hierarchy order; their details are in _bones()).
_BONES = ("センター", "上半身", "首", "頭", "両目", "左目", "右目")
_B = {name: i for i, name in enumerate(_BONES)}
# How the model lists them (unless hierarchy_order): children before parents and the neck far
# from its place in the hierarchy, as real models do (Gene lists 219 of its 224 bones that way).
FILE_BONE_ORDER = ("頭", "左目", "センター", "右目", "両目", "首", "上半身")


@dataclass(frozen=True)
class CharacterLook:
    """Look parameters of one character (colours as 0-255 RGB)."""

    skin_color: RGB = (250, 222, 200)
    hair_color: RGB = (70, 50, 120)
    eye_color: RGB = (40, 110, 200)
    cloth_color: RGB = (230, 230, 240)
    eye_size: float = 1.0  # scales both eye radii
    hair_length: float = 2.5  # how far the back hair hangs below the head centre
    head_scale: float = 1.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> CharacterLook:
        """A random but plausible look drawn from `rng`."""

        def hsv(h: float, s: float, v: float) -> RGB:
            return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))

        return cls(
            skin_color=hsv(rng.uniform(0.04, 0.09), rng.uniform(0.08, 0.3), rng.uniform(0.85, 1.0)),
            hair_color=hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.25, 0.95)),
            eye_color=hsv(rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.9)),
            cloth_color=hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.7), rng.uniform(0.5, 1.0)),
            eye_size=float(rng.uniform(0.8, 1.25)),
            hair_length=float(rng.uniform(1.0, 5.0)),
            head_scale=float(rng.uniform(0.9, 1.1)),
        )


@dataclass(frozen=True, eq=False)
class SyntheticCharacter:
    """A built character: the model, its texture and what each morph is meant to be."""

    model: PmxModel
    texture: np.ndarray  # (H, W, 4) uint8 RGBA
    intended_targets: dict[str, str | None]  # morph name -> AnimeCeleb target (None: not a target)
    regions: dict[str, np.ndarray]  # part name -> vertex indices
    look: CharacterLook


@dataclass
class _Part:
    """A piece of mesh before assembly (local vertex numbering)."""

    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    bones: tuple[int, int]  # (bone a, bone b)
    weights: np.ndarray  # weight of bone a per vertex (1.0 = BDEF1)


@dataclass(frozen=True)
class _Disc:
    """A flat elliptic feature (eye, brow, mouth) laid on the face surface."""

    center: tuple[float, float]
    radii: tuple[float, float]
    side: int  # +1 character's left (+X), -1 right
    w: np.ndarray  # local coordinate toward the face's centre line, in units of radii[0]
    v: np.ndarray  # local coordinate up, in units of radii[1]


def _tile_uv(tile: str) -> np.ndarray:
    index = _TILES[tile]
    return np.array([(index % _GRID + 0.5) / _GRID, (index // _GRID + 0.5) / _GRID], dtype=np.float32)


def _ellipsoid(center, radii, n_lat: int, n_lon: int, lat=(0.0, np.pi), lon=(0.0, 2 * np.pi)) -> tuple:
    """Grid over an ellipsoid patch: positions, outward normals, faces."""
    theta = np.linspace(*lat, n_lat + 1)  # from the top (+Y) down
    phi = np.linspace(*lon, n_lon + 1)  # around Y, 0 = toward +Z (the back)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
    radii = np.asarray(radii, dtype=np.float64)
    positions = np.asarray(center) + unit * radii
    normals = unit / radii
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return positions, normals, _grid_faces(n_lat, n_lon)


def _grid_faces(n_rows: int, n_cols: int) -> np.ndarray:
    """Two triangles per cell of an (n_rows + 1) x (n_cols + 1) vertex grid."""
    cols = n_cols + 1
    r, c = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    a = (r * cols + c).ravel()
    b, d = a + 1, a + cols
    return np.concatenate([np.stack([a, b, d + 1], 1), np.stack([a, d + 1, d], 1)])


def _disc_geometry(n_ring: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit disc as a fan: (u, v) of centre + two rings, and its faces."""
    angles = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    u = np.concatenate([[0.0], 0.5 * np.cos(angles), np.cos(angles)])
    v = np.concatenate([[0.0], 0.5 * np.sin(angles), np.sin(angles)])
    k = np.arange(n_ring)
    inner, outer = 1 + k, 1 + n_ring + k
    inner_next, outer_next = 1 + (k + 1) % n_ring, 1 + n_ring + (k + 1) % n_ring
    faces = np.concatenate([
        np.stack([np.zeros(n_ring, int), inner, inner_next], 1),
        np.stack([inner, outer, outer_next], 1),
        np.stack([inner, outer_next, inner_next], 1),
    ])
    return u, v, faces


class _Head:
    """The head ellipsoid: lays features on its front surface."""

    def __init__(self, center: np.ndarray, radii: np.ndarray):
        self.center, self.radii = center, radii

    def surface_z(self, x: np.ndarray, y: np.ndarray, lift: float = 0.02) -> np.ndarray:
        """z of the front surface (toward -Z) at (x, y), `lift` in front of it."""
        cx, cy, cz = self.center
        rx, ry, rz = self.radii
        inside = np.clip(1 - ((x - cx) / rx) ** 2 - ((y - cy) / ry) ** 2, 0.0, None)
        return cz - rz * np.sqrt(inside) - lift

    def place(self, disc: _Disc, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """World positions of local disc coordinates (w inward, v up)."""
        x = disc.center[0] - disc.side * w * disc.radii[0]
        y = disc.center[1] + v * disc.radii[1]
        return np.stack([x, y, self.surface_z(x, y)], axis=1)


# Local-coordinate morph shapes: (w, v) -> (w', v'); w is toward the centre line.
Shape = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_SHAPES: dict[str, Shape] = {
    "eye_close": lambda w, v: (w, -0.35 + 0.05 * v),
    "eye_smile": lambda w, v: (w, 0.35 * (1 - w * w) - 0.25 + 0.08 * v),
    "brow_raise": lambda w, v: (w, v + 2.5),
    "brow_lower": lambda w, v: (w, v - 1.6),
    "brow_serious": lambda w, v: (0.95 * w, v - 1.2),
    "brow_troubled": lambda w, v: (w, v + 0.8 + 2.2 * w),
    "brow_angry": lambda w, v: (w, v - 0.6 - 2.2 * w),
    "mouth_a": lambda w, v: (1.25 * w, 6.0 * v),
    "mouth_i": lambda w, v: (1.6 * w, 1.8 * v),
    "mouth_u": lambda w, v: (0.55 * w, 3.2 * v),
    "mouth_e": lambda w, v: (1.35 * w, 3.8 * v),
    "mouth_o": lambda w, v: (0.85 * w, 5.2 * v),
    "mouth_corners_up": lambda w, v: (w, v + 2.2 * w * w),
}

# Vertex morphs: (name, English name, panel, shape, regions, intended target).
_VERTEX_MORPHS: tuple[tuple[str, str, MorphPanel, str, tuple[str, ...], str | None], ...] = (
    ("まばたき", "blink", MorphPanel.EYE, "eye_close", ("eye_left", "eye_right"), "eye_close"),
    ("ウィンク", "wink", MorphPanel.EYE, "eye_smile", ("eye_left",), "eye_smile_left"),
    ("ウィンク右", "wink_R", MorphPanel.EYE, "eye_smile", ("eye_right",), "eye_smile_right"),
    ("ウィンク２", "wink2", MorphPanel.EYE, "eye_close", ("eye_left",), "eye_close_left"),
    ("ウィンク２右", "wink2_R", MorphPanel.EYE, "eye_close", ("eye_right",), "eye_close_right"),
    ("笑い", "smile", MorphPanel.EYE, "eye_smile", ("eye_left", "eye_right"), "eye_smile"),
    ("真面目", "serious", MorphPanel.EYEBROW, "brow_serious", ("brow_left", "brow_right"), "brow_lower"),
    ("困る", "troubled", MorphPanel.EYEBROW, "brow_troubled", ("brow_left", "brow_right"), "brow_troubled"),
    ("怒り", "angry", MorphPanel.EYEBROW, "brow_angry", ("brow_left", "brow_right"), "brow_angry"),
    ("上", "brow up", MorphPanel.EYEBROW, "brow_raise", ("brow_left", "brow_right"), "brow_raise"),
    ("下", "brow down", MorphPanel.EYEBROW, "brow_lower", ("brow_left", "brow_right"), "brow_lower"),
    ("困る左", "troubled_L", MorphPanel.EYEBROW, "brow_troubled", ("brow_left",), "brow_troubled_left"),
    ("困る右", "troubled_R", MorphPanel.EYEBROW, "brow_troubled", ("brow_right",), "brow_troubled_right"),
    ("あ", "a", MorphPanel.MOUTH, "mouth_a", ("mouth",), "mouth_a"),
    ("い", "i", MorphPanel.MOUTH, "mouth_i", ("mouth",), "mouth_i"),
    ("う", "u", MorphPanel.MOUTH, "mouth_u", ("mouth",), "mouth_u"),
    ("え", "e", MorphPanel.MOUTH, "mouth_e", ("mouth",), "mouth_e"),
    ("お", "o", MorphPanel.MOUTH, "mouth_o", ("mouth",), "mouth_o"),
    ("口角上げ", "mouth corners up", MorphPanel.MOUTH, "mouth_corners_up", ("mouth",), None),
)
# Mapped to a real target but moves nothing: what inspection must flag.
_DEAD_MORPH = ("目閉じ", "eyes closed", MorphPanel.EYE, "still", ("eye_left", "eye_right"), "eye_close")
GROUP_MORPH = ("喜び", (("笑い", 1.0), ("上", 0.5), ("い", 0.6)))
SHOW_MORPH = "照れ"  # material morph: adds 1 to the blush's alpha (with hidden_part)
UV_MORPH = "瞳色"  # UV morph: moves the irises' UVs one atlas tile over (with uv_morph)
BONE_MORPH = ("うなずき", "頭", 12.0)  # nod: the head bone pitched 12 degrees


def _tile_colors(look: CharacterLook) -> dict[str, RGB]:
    return {"skin": look.skin_color, "hair": look.hair_color, "eye": (250, 250, 250),
            "brow": tuple(int(c * 0.6) for c in look.hair_color), "mouth": (150, 40, 50),
            "cloth": look.cloth_color, "blush": (235, 110, 130)}


def _texture(look: CharacterLook) -> np.ndarray:
    """The RGBA atlas: solid tiles, and an iris with pupil and highlight in the eye tile."""
    tile = _ATLAS // _GRID
    image = np.zeros((_ATLAS, _ATLAS, 4), dtype=np.uint8)
    image[..., 3] = 255
    for name, color in _tile_colors(look).items():
        row, col = divmod(_TILES[name], _GRID)
        image[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile, :3] = color
    row, col = divmod(_TILES["eye"], _GRID)
    yy, xx = np.mgrid[0:tile, 0:tile]
    r = np.hypot(xx - tile / 2 + 0.5, yy - tile / 2 + 0.5) / (tile / 2)
    eye = image[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile]
    eye[r < 0.75, :3] = look.eye_color
    eye[r < 0.35, :3] = (15, 15, 25)
    eye[np.hypot(xx - tile * 0.38, yy - tile * 0.35) < tile * 0.09, :3] = 255
    return image


def _orient(faces: np.ndarray, positions: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Order each triangle so cross(b - a, c - a) points along its vertex normals (MMD's winding)."""
    a, b, c = (positions[faces[:, i]] for i in range(3))
    cross = np.cross(b - a, c - a)
    keep = np.linalg.norm(cross, axis=1) > 1e-9  # drop triangles collapsed at the poles
    flip = np.einsum("ij,ij->i", cross, normals[faces].sum(axis=1)) < 0
    faces = np.where(flip[:, None], faces[:, [0, 2, 1]], faces)
    return faces[keep]


def _part(positions, normals, faces, tile: str, bones: tuple[int, int], weights=1.0) -> _Part:
    uvs = np.tile(_tile_uv(tile), (len(positions), 1))
    w = np.broadcast_to(np.asarray(weights, dtype=np.float32), (len(positions),)).copy()
    return _Part(positions, normals, uvs, _orient(faces, positions, normals), bones, w)


def _curtain(center, radii, top: float, bottom: float, lon: tuple[float, float]) -> tuple:
    """Back hair: a vertical sheet on an elliptic cylinder around the back of the head."""
    yy, pp = np.meshgrid(np.linspace(top, bottom, 7), np.linspace(*lon, 17), indexing="ij")
    outward = np.stack([np.sin(pp), np.zeros_like(pp), np.cos(pp)], axis=-1).reshape(-1, 3)
    positions = outward * radii + (center[0], 0.0, center[2])
    positions[:, 1] = yy.ravel()
    return positions, outward, _grid_faces(6, 16)


class _Builder:
    """Assembles one character; keeps where each part's vertices ended up."""

    def __init__(self, look: CharacterLook):
        self.look = look
        s = look.head_scale
        self.head = _Head(np.array([0.0, 15.0, 0.0]), np.array([1.55, 1.75, 1.55]) * s)
        self.parts: list[tuple[str, str, _Part]] = []  # (region, material, part)
        self.discs: dict[str, _Disc] = {}
        self.disc_u, self.disc_v, self.disc_faces = _disc_geometry(16)

    def add(self, region: str, material: str, part: _Part) -> None:
        self.parts.append((region, material, part))

    def add_disc(self, region: str, material: str, center, radii, side: int, bone: int, textured: bool) -> None:
        w, v = -side * self.disc_u, self.disc_v
        disc = _Disc(center, radii, side, w, v)
        self.discs[region] = disc
        positions = self.head.place(disc, w, v)
        normals = np.tile([0.0, 0.0, -1.0], (len(positions), 1))
        if textured:  # the iris picture spans the eye tile
            uvs = _tile_uv("eye") + np.stack([self.disc_u, -self.disc_v], 1) * (0.48 / _GRID)
        else:
            uvs = np.tile(_tile_uv(material), (len(positions), 1))
        faces = _orient(self.disc_faces, positions, normals)
        self.add(region, material, _Part(positions, normals, uvs.astype(np.float32), faces, (bone, bone),
                                         np.ones(len(positions), np.float32)))

    def build_meshes(self) -> None:
        look, head = self.look, self.head
        hc, hr = head.center, head.radii
        upper, neck, head_bone = _B["上半身"], _B["首"], _B["頭"]
        self.add("body", "cloth", _part(*_ellipsoid((0, 10.8, 0), (1.9, 2.3, 1.1), 12, 20), "cloth", (upper, upper)))
        positions, normals, faces = _ellipsoid((0, 13.3, 0), (0.45, 0.9, 0.45), 8, 12, lat=(0.2 * np.pi, 0.8 * np.pi))
        # the lower neck follows the upper body half-way (BDEF2); the rest only the neck bone
        self.add("neck", "skin", _part(positions, normals, faces, "skin", (upper, neck),
                                       np.where(positions[:, 1] < 13.0, 0.5, 0.0)))
        self.add("head", "skin", _part(*_ellipsoid(hc, hr, 16, 24), "skin", (head_bone, head_bone)))
        es = look.eye_size
        for side, suffix in ((1, "left"), (-1, "right")):
            x = side * 0.55 * hr[0] / 1.55
            eye_bone = _B["左目"] if side > 0 else _B["右目"]
            self.add_disc(f"eye_{suffix}", "eye", (x, hc[1] - 0.15), (0.32 * es, 0.42 * es), side, eye_bone, True)
            self.add_disc(f"brow_{suffix}", "brow", (x, hc[1] + 0.55 + 0.1 * es), (0.38, 0.07), side, head_bone, False)
        self.add_disc("mouth", "mouth", (0.0, hc[1] - 0.95), (0.28, 0.05), 1, head_bone, False)
        hair_r = hr * 1.08
        cap = _ellipsoid(hc, hair_r, 8, 24, lat=(0.0, 0.34 * np.pi))
        self.add("hair", "hair", _part(*cap, "hair", (head_bone, head_bone)))
        back = _curtain(hc, hair_r, hc[1] + 0.6 * hr[1], hc[1] - look.hair_length, (-0.61 * np.pi, 0.61 * np.pi))
        self.add("back_hair", "hair", _part(*back, "hair", (head_bone, head_bone)))


def _assemble(builder: _Builder) -> tuple[Vertices, np.ndarray, list[Material], dict[str, np.ndarray]]:
    """Concatenate parts grouped by material (faces must be contiguous per material)."""
    order = list(dict.fromkeys(material for _, material, _ in builder.parts))
    parts = sorted(builder.parts, key=lambda item: order.index(item[1]))
    regions, faces_by_material, start = {}, {m: [] for m in order}, 0
    for region, material, part in parts:
        regions[region] = np.arange(start, start + len(part.positions))
        faces_by_material[material].append(part.faces + start)
        start += len(part.positions)

    def cat(attr: str) -> np.ndarray:
        return np.concatenate([getattr(p, attr) for _, _, p in parts]).astype(np.float32)

    weights = cat("weights")  # of bone a: 1 -> BDEF1 on a, 0 -> BDEF1 on b, else BDEF2
    bone_a = np.concatenate([np.full(len(p.positions), p.bones[0]) for _, _, p in parts])
    bone_b = np.concatenate([np.full(len(p.positions), p.bones[1]) for _, _, p in parts])
    n = len(weights)
    single = (weights >= 1.0) | (weights <= 0.0)
    bone_indices = np.full((n, 4), -1, dtype=np.int32)
    bone_weights = np.zeros((n, 4), dtype=np.float32)
    bone_indices[:, 0] = np.where(weights > 0.0, bone_a, bone_b)
    bone_indices[:, 1] = np.where(single, -1, bone_b)
    bone_weights[:, 0] = np.where(single, 1.0, weights)
    bone_weights[:, 1] = np.where(single, 0.0, 1.0 - weights)
    vertices = Vertices(
        positions=cat("positions"),
        normals=cat("normals"),
        uvs=cat("uvs"),
        additional_uvs=np.zeros((n, 0, 4), np.float32),
        weight_types=np.where(single, WeightType.BDEF1, WeightType.BDEF2).astype(np.uint8),
        bone_indices=bone_indices,
        bone_weights=bone_weights,
        sdef=np.zeros((n, 3, 3), np.float32),
        edge_scales=np.ones(n, np.float32),
    )
    face_arrays = [np.concatenate(faces_by_material[m]) for m in order]
    colors = _tile_colors(builder.look) | {"eye": builder.look.eye_color}
    materials = [_material(m, len(f) * 3, colors[m]) for m, f in zip(order, face_arrays)]
    return vertices, np.concatenate(face_arrays).astype(np.int32), materials, regions


_MATERIAL_NAMES = {"cloth": ("服", "clothes"), "skin": ("肌", "skin"), "eye": ("目", "eyes"),
                   "brow": ("眉", "brows"), "mouth": ("口", "mouth"), "hair": ("髪", "hair"),
                   "blush": ("頬染め", "blush")}


def _material(tile: str, index_count: int, rgb: RGB) -> Material:
    """A material on the atlas; its diffuse is the tile colour (the fallback without texture)."""
    color = tuple(c / 255.0 for c in rgb)
    name, name_en = _MATERIAL_NAMES[tile]
    double_sided = 0x01 if tile in ("hair", "brow") else 0
    alpha = 0.0 if tile in _HIDDEN else 1.0
    return Material(name, name_en, diffuse=(*color, alpha), ambient=tuple(c * 0.5 for c in color),
                    flags=double_sided | 0x10, texture=0, index_count=index_count)


def _bones(builder: _Builder) -> tuple[Bone, ...]:
    hc = builder.head.center
    eye = builder.discs["eye_left"].center
    base = BoneFlag.ROTATABLE | BoneFlag.VISIBLE | BoneFlag.ENABLED
    eye_z = float(builder.head.surface_z(np.array([eye[0]]), np.array([eye[1]]))[0]) + 0.3
    return (
        Bone("センター", "center", (0.0, 8.0, 0.0), -1, 0, base | BoneFlag.TRANSLATABLE, (0.0, -1.0, 0.0)),
        Bone("上半身", "upper body", (0.0, 9.5, 0.0), _B["センター"], 0, base | BoneFlag.TAIL_IS_BONE, _B["首"]),
        Bone("首", "neck", (0.0, 12.9, 0.0), _B["上半身"], 0, base | BoneFlag.TAIL_IS_BONE, _B["頭"]),
        Bone("頭", "head", (0.0, 13.9, 0.0), _B["首"], 0, base, (0.0, 1.6, 0.0)),
        Bone("両目", "eyes", (0.0, float(hc[1]) + 2.2, eye_z), _B["頭"], 0, base, (0.0, 0.0, -0.5)),
        *(
            Bone(name, name_en, (sign * float(eye[0]), float(eye[1]), eye_z), _B["頭"], 0,
                 base | BoneFlag.INHERIT_ROTATION, (0.0, 0.0, -0.5), inherit=(_B["両目"], 1.0))
            for name, name_en, sign in (("左目", "eye_L", 1), ("右目", "eye_R", -1))
        ),
    )


def _vertex_morph(builder: _Builder, vertices: Vertices, regions: dict, spec) -> Morph:
    """A vertex morph reshaping the discs of `parts`; the "still" shape lists them with zero offsets."""
    name, name_en, panel, shape, parts, _ = spec
    indices, offsets = [], []
    for part in parts:
        disc = builder.discs[part]
        if shape == "still":
            delta = np.zeros((len(regions[part]), 3))
            moved = np.ones(len(delta), bool)
        else:
            delta = builder.head.place(disc, *_SHAPES[shape](disc.w, disc.v)) - vertices.positions[regions[part]]
            moved = np.abs(delta).max(axis=1) > 1e-6
        indices.append(regions[part][moved])
        offsets.append(delta[moved])
    table = np.zeros(sum(len(i) for i in indices), dtype=morph_offset_dtype(MorphKind.VERTEX))
    table["index"] = np.concatenate(indices)
    table["offset"] = np.concatenate(offsets)
    return Morph(name, name_en, int(panel), MorphKind.VERTEX, table)


def _group_morph(morph_names: list[str]) -> Morph:
    name, members = GROUP_MORPH
    table = np.zeros(len(members), dtype=morph_offset_dtype(MorphKind.GROUP))
    table["index"] = [morph_names.index(member) for member, _ in members]
    table["weight"] = [weight for _, weight in members]
    return Morph(name, "joy", int(MorphPanel.OTHER), MorphKind.GROUP, table)


def _bone_morph() -> Morph:
    name, bone, degrees = BONE_MORPH
    half = np.radians(degrees) / 2
    table = np.zeros(1, dtype=morph_offset_dtype(MorphKind.BONE))
    table["index"] = _B[bone]
    table["rotation"] = (np.sin(half), 0.0, 0.0, np.cos(half))  # quaternion x, y, z, w
    return Morph(name, "nod", int(MorphPanel.OTHER), MorphKind.BONE, table)


def _add_blush(builder: _Builder) -> None:
    """Two cheek discs on their own alpha-0 material (the hidden part)."""
    hc, hr = builder.head.center, builder.head.radii
    for side, suffix in ((1, "left"), (-1, "right")):
        x = side * 0.95 * hr[0] / 1.55
        builder.add_disc(f"blush_{suffix}", "blush", (x, hc[1] - 0.62), (0.3, 0.12), side, _B["頭"], False)


def _show_morph(materials: list[Material]) -> Morph:
    table = np.zeros(1, dtype=morph_offset_dtype(MorphKind.MATERIAL))
    table["index"] = [m.name for m in materials].index(_MATERIAL_NAMES["blush"][0])
    table["operation"] = 1  # add
    table["diffuse"] = (0.0, 0.0, 0.0, 1.0)
    return Morph(SHOW_MORPH, "blush", int(MorphPanel.OTHER), MorphKind.MATERIAL, table)


def _uv_morph(regions: dict[str, np.ndarray]) -> Morph:
    eyes = np.concatenate([regions["eye_left"], regions["eye_right"]])
    table = np.zeros(len(eyes), dtype=morph_offset_dtype(MorphKind.UV))
    table["index"] = eyes
    table["offset"] = (1.0 / _GRID, 0.0, 0.0, 0.0)  # the eye tile -> the brow tile beside it
    return Morph(UV_MORPH, "eye colour", int(MorphPanel.OTHER), MorphKind.UV, table)


def _physics() -> tuple[tuple[RigidBody, ...], tuple[Joint, ...]]:
    """A head collider and a dangling hair body joined to it (round-trip coverage)."""
    bodies = (
        RigidBody("頭", "head", _B["頭"], 0, 0xFFFE, 0, (1.6, 0.0, 0.0), (0.0, 15.0, 0.0), mode=0),
        RigidBody("髪", "hair", _B["頭"], 1, 0xFFFD, 2, (0.6, 2.0, 0.0), (0.0, 14.0, 1.2), mode=1),
    )
    joints = (Joint("髪", "hair", 0, 0, 1, (0.0, 15.5, 1.0), rotation_min=(-0.3, -0.1, -0.3),
                    rotation_max=(0.3, 0.1, 0.3)),)
    return bodies, joints


def build_character(
    look: CharacterLook | None = None, *, dead_morph: bool = False, hidden_part: bool = False,
    uv_morph: bool = False, hierarchy_order: bool = False, name: str = "synthetic"
) -> SyntheticCharacter:
    """Build a character with the given look (defaults when None).

    With `dead_morph`, a morph named 目閉じ (an eye_close alias) is added that
    lists the eye vertices with zero offsets: mapped, but it moves nothing.
    With `hidden_part`, blush discs on the cheeks use a material of alpha 0
    that the material morph 照れ shows; with `uv_morph`, the UV morph 瞳色
    recolours the irises. Neither is a target morph. Bones are listed as
    FILE_BONE_ORDER (out of hierarchy order), or parents first with
    `hierarchy_order`.
    """
    look = look or CharacterLook()
    builder = _Builder(look)
    builder.build_meshes()
    if hidden_part:
        _add_blush(builder)
    vertices, faces, materials, regions = _assemble(builder)
    specs = _VERTEX_MORPHS + ((_DEAD_MORPH,) if dead_morph else ())
    morphs = [_vertex_morph(builder, vertices, regions, spec) for spec in specs]
    morphs += [_group_morph([m.name for m in morphs]), _bone_morph()]
    morphs += ([_show_morph(materials)] if hidden_part else []) + ([_uv_morph(regions)] if uv_morph else [])
    intended = {spec[0]: spec[5] for spec in specs} | {m.name: None for m in morphs[len(specs):]}
    bones = _bones(builder)
    frames = (
        DisplayFrame("Root", "Root", True, ((0, _B["センター"]),)),
        DisplayFrame("表情", "Exp", True, tuple((1, i) for i in range(len(morphs)))),
        DisplayFrame("頭", "head", False, ((0, _B["首"]), (0, _B["頭"]), (0, _B["両目"]))),
    )
    bodies, joints = _physics()
    model = PmxModel(
        header=PmxHeader(),
        info=ModelInfo(name, name, "synthetic test character", "synthetic test character"),
        vertices=vertices,
        faces=faces,
        textures=(TEXTURE_PATH,),
        materials=tuple(materials),
        bones=bones,
        morphs=tuple(morphs),
        display_frames=frames,
        rigid_bodies=bodies,
        joints=joints,
    )
    if not hierarchy_order:
        model = reorder_bones(model, [_B[name] for name in FILE_BONE_ORDER])
    regions["eyes"] = np.concatenate([regions["eye_left"], regions["eye_right"]])
    regions["brows"] = np.concatenate([regions["brow_left"], regions["brow_right"]])
    return SyntheticCharacter(model, _texture(look), intended, regions, look)


def random_character(rng: np.random.Generator, **kwargs) -> SyntheticCharacter:
    """A character with a look drawn from `rng` (kwargs go to build_character)."""
    return build_character(CharacterLook.random(rng), **kwargs)


def write_character(character: SyntheticCharacter, folder: str | os.PathLike, stem: str = "character",
                    texture: bool = True) -> Path:
    """Write `{folder}/{stem}.pmx` and its texture `{folder}/tex/face.png` (not with texture=False); return the .pmx path."""
    folder = Path(folder)
    texture_file = folder.joinpath(*TEXTURE_PATH.split("\\"))
    texture_file.parent.mkdir(parents=True, exist_ok=True)
    if texture:  # without it the model names a texture file that is missing
        Image.fromarray(character.texture).save(texture_file)  # (H, W, 4) uint8: RGBA
    return write_pmx(character.model, folder / f"{stem}.pmx")

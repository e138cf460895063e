"""One procedural 2D anime character, drawn with its exact face box.

A character is a :class:`Look` (colours, line weight, face, eye, hair and
mouth shapes, all sampled by :func:`random_look`) drawn at a :class:`Placement`
(centre, scale, roll, turn, mirror) onto its own RGBA layer by
:func:`draw_character`. Face-local units: the face is 2 wide (cheek to cheek,
ears outside it), the chin at y = 1, the eyes near y = 0.1 and the face box
top at y = -0.85, about the brows, under the fringe: the face box convention
of anime face data sets such as ../shared/realdata/anime2d_dev (brows to chin,
between the ears). Seen from behind (``Look.back_view``) the head is all hair
and has no face box: a hard negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

RGB = tuple[int, int, int]
BOX_TOP = -0.85  # face box top in face units (about the brows)
CHIN = 1.0
_SHIFT = 4  # cv2 sub-pixel bits
_EYE_KINDS = ("round", "round", "almond", "sharp", "happy", "closed", "half")
_MOUTHS = ("line", "smile", "open", "cat", "small_o", "open", "smile")
_NOSES = ("none", "dot", "line", "angle", "shadow")
_FRINGES = ("strands", "blunt", "side", "parted", "strands")


@dataclass(frozen=True)
class Look:
    """How one character looks; every field is sampled by :func:`random_look`."""

    skin: RGB
    hair: RGB
    iris: RGB
    line: RGB
    clothes: RGB
    line_w: float  # line width in face units
    chin: float  # 0 round .. 1 pointed
    face_len: float  # chin height factor
    eye: str  # one of _EYE_KINDS
    eye_w: float
    eye_h: float
    eye_x: float
    eye_y: float
    eye_tilt: float  # degrees, outer corner up for positive
    highlights: int
    lashes: bool
    mouth: str
    mouth_open: float
    nose: str
    blush: float  # 0 none .. 1 strong
    fringe: str
    fringe_len: float  # strand tips' y in face units
    strands: int
    side_locks: float  # lock length below the chin, 0 none
    back_hair: float  # back hair length in face units below the chin, 0 short
    hair_volume: float
    ahoge: bool
    ears: str  # "human", "animal", "hidden"
    shade: bool  # cel shadow under the fringe and on the neck
    back_view: bool
    # Things real illustrations show near faces that are not faces: skin-coloured
    # hands (beside the cheek, under the chin, raised, on the chest) and hair bows.
    hands: int = 0
    bow: RGB | None = None


@dataclass(frozen=True)
class Placement:
    """Where a character is drawn: face centre in pixels, pixels per face unit, roll, turn, mirror."""

    cx: float
    cy: float
    scale: float
    roll_deg: float
    turn: float  # -1..1: features shift toward the turn (three-quarter views)
    mirror: bool


def _hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float], hue: float | None = None) -> RGB:
    h = float(rng.uniform(0, 180)) if hue is None else hue
    pixel = np.uint8([[[h, rng.uniform(*s) * 255, rng.uniform(*v) * 255]]])
    return tuple(int(c) for c in cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0])


def random_look(rng: np.random.Generator, back_view: bool = False) -> Look:
    """A random character: anime proportions, any hair and eye colour, varied shapes and line weights."""
    skin_base = np.array([(255, 236, 224), (250, 222, 200), (240, 200, 172), (255, 244, 238), (205, 155, 120)][
        int(rng.choice(5, p=[0.3, 0.3, 0.2, 0.15, 0.05]))], float)
    skin = tuple(int(c) for c in np.clip(skin_base + rng.normal(0, 6, 3), 0, 255))
    hair = _hsv(rng, (0.0, 0.85), (0.12, 1.0))
    line_kind = rng.random()
    if line_kind < 0.5:
        line = (int(rng.integers(0, 40)),) * 3
    elif line_kind < 0.75:
        line = (int(rng.integers(50, 90)), int(rng.integers(25, 50)), int(rng.integers(15, 35)))
    else:
        line = tuple(int(c * rng.uniform(0.25, 0.5)) for c in hair)
    eye_h = float(rng.uniform(0.16, 0.3))
    return Look(
        skin=skin,
        hair=hair,
        iris=_hsv(rng, (0.35, 1.0), (0.35, 0.95)),
        line=line,
        clothes=_hsv(rng, (0.0, 0.9), (0.2, 1.0)),
        line_w=float(np.exp(rng.uniform(np.log(0.012), np.log(0.05)))),
        chin=float(rng.uniform(0, 1)),
        face_len=float(rng.uniform(0.9, 1.1)),
        eye=str(rng.choice(_EYE_KINDS)),
        eye_w=float(rng.uniform(0.18, 0.3)),
        eye_h=eye_h,
        eye_x=float(rng.uniform(0.4, 0.5)),
        eye_y=float(rng.uniform(0.0, 0.18)),
        eye_tilt=float(rng.uniform(-12, 14)),
        highlights=int(rng.integers(0, 4)),
        lashes=bool(rng.random() < 0.6),
        mouth=str(rng.choice(_MOUTHS)),
        mouth_open=float(rng.uniform(0.2, 1.0)),
        nose=str(rng.choice(_NOSES)),
        blush=float(rng.uniform(0, 1) if rng.random() < 0.5 else 0.0),
        fringe=str(rng.choice(_FRINGES)),
        fringe_len=float(rng.uniform(-0.75, -0.15)),
        strands=int(rng.integers(3, 9)),
        side_locks=float(rng.uniform(0.0, 2.5) if rng.random() < 0.75 else 0.0),
        back_hair=float(rng.uniform(-0.3, 4.0) if rng.random() < 0.7 else 0.0),
        hair_volume=float(rng.uniform(1.05, 1.3)),
        ahoge=bool(rng.random() < 0.3),
        ears=str(rng.choice(["human", "animal", "hidden"], p=[0.3, 0.15, 0.55])),
        shade=bool(rng.random() < 0.6),
        back_view=back_view,
        hands=int(rng.choice(3, p=[0.45, 0.35, 0.2])),
        bow=_hsv(rng, (0.4, 1.0), (0.5, 1.0)) if rng.random() < 0.35 else None,
    )


# -- geometry -------------------------------------------------------------------------
class _Frame:
    """Face units -> pixels for one placement (turn, mirror, roll, scale, translation)."""

    def __init__(self, place: Placement) -> None:
        self.p = place
        r = math.radians(place.roll_deg)
        self.c, self.s = math.cos(r), math.sin(r)

    def __call__(self, pts: np.ndarray, depth: float = 0.0) -> np.ndarray:
        pts = np.asarray(pts, float).reshape(-1, 2)
        x, y = pts[:, 0].copy(), pts[:, 1]
        if self.p.mirror:
            x = -x
        # A three-quarter view: features (depth > 0) move toward the turn, the chin follows.
        x = x * (1 - 0.22 * abs(self.p.turn) * depth) + self.p.turn * depth * 0.32
        x = x + self.p.turn * 0.15 * np.clip(y, 0, None)
        x, y = x * self.p.scale, y * self.p.scale
        return np.stack([self.p.cx + self.c * x - self.s * y, self.p.cy + self.s * x + self.c * y], axis=1)

    def px(self, units: float) -> float:
        return units * self.p.scale


def _bezier(*ctrl: tuple[float, float], n: int = 16) -> np.ndarray:
    """Points along a Bezier curve through its control points (quadratic or cubic)."""
    t = np.linspace(0, 1, n)[:, None]
    p = [np.asarray(c, float) for c in ctrl]
    if len(p) == 3:
        return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def _ellipse_pts(cx: float, cy: float, ax: float, ay: float, start: float = 0, end: float = 360, n: int = 40) -> np.ndarray:
    a = np.radians(np.linspace(start, end, n))
    return np.stack([cx + ax * np.cos(a), cy + ay * np.sin(a)], axis=1)


def _taper(curve: np.ndarray, w0: float, w1: float, w_mid: float | None = None) -> np.ndarray:
    """A filled stroke along ``curve`` whose width runs w0 -> (w_mid) -> w1: a polygon."""
    d = np.gradient(curve, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    t = np.linspace(0, 1, len(curve))
    w = w0 + (w1 - w0) * t if w_mid is None else np.where(t < 0.5, w0 + (w_mid - w0) * 2 * t, w_mid + (w1 - w_mid) * (2 * t - 1))
    half = (w / 2)[:, None]
    return np.concatenate([curve + n * half, (curve - n * half)[::-1]])


class _Canvas:
    """An RGBA layer that each fill also marks in alpha."""

    def __init__(self, height: int, width: int) -> None:
        self.rgb = np.zeros((height, width, 3), np.uint8)
        self.alpha = np.zeros((height, width), np.uint8)

    @staticmethod
    def _fixed(pts: np.ndarray) -> list[np.ndarray]:
        return [np.round(pts * (1 << _SHIFT)).astype(np.int32)]

    def fill(self, pts: np.ndarray, colour: RGB, opaque: bool = True) -> None:
        cv2.fillPoly(self.rgb, self._fixed(pts), colour, cv2.LINE_AA, _SHIFT)
        if opaque:
            cv2.fillPoly(self.alpha, self._fixed(pts), 255, cv2.LINE_AA, _SHIFT)

    def line(self, pts: np.ndarray, colour: RGB, width: float, closed: bool = False) -> None:
        cv2.polylines(self.rgb, self._fixed(pts), closed, colour, max(1, round(width)), cv2.LINE_AA, _SHIFT)

    def outlined(self, pts: np.ndarray, colour: RGB, line: RGB, width: float) -> None:
        self.fill(pts, colour)
        self.line(pts, line, width, closed=True)

    def tint(self, pts: np.ndarray, colour: RGB, strength: float) -> None:
        """Blend ``colour`` over what is drawn inside ``pts`` (blush, shadows); alpha unchanged."""
        mask = np.zeros(self.alpha.shape, np.uint8)
        cv2.fillPoly(mask, self._fixed(pts), 255, cv2.LINE_AA, _SHIFT)
        m = (mask.astype(np.float32) / 255 * strength)[..., None]
        self.rgb[:] = np.round(self.rgb * (1 - m) + np.asarray(colour, np.float32) * m).astype(np.uint8)


def _darker(colour: RGB, f: float) -> RGB:
    return tuple(int(c * f) for c in colour)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(x * (1 - t) + y * t) for x, y in zip(a, b))


# -- parts ------------------------------------------------------------------------------
def _face_outline(look: Look) -> np.ndarray:
    """Cheek to chin to cheek, closed over the forehead (face units, before the frame)."""
    chin_y = CHIN * look.face_len
    jaw_x, jaw_y = 0.62 - 0.3 * look.chin, 0.78 * chin_y - 0.05 * look.chin
    right = np.concatenate([
        _bezier((1.0, -1.0), (1.03, -0.2), (1.0, 0.3), n=8),
        _bezier((1.0, 0.3), (0.95, 0.6), (jaw_x + 0.1, jaw_y), (0.0, chin_y), n=14)[1:],
    ])
    left = right[::-1] * [-1, 1]
    return np.concatenate([left, right[1:]])


def _draw_back_hair(cv: _Canvas, f: _Frame, look: Look, lw: float) -> None:
    v = look.hair_volume
    if look.back_hair > 0:
        bottom = CHIN + look.back_hair
        ragged = np.linspace(1.25 * v, -1.25 * v, 7)
        tips = [(x, bottom - 0.25 * (i % 2)) for i, x in enumerate(ragged)]
        pts = np.concatenate([_ellipse_pts(0, -0.7, 1.15 * v, 1.25 * v, 180, 360, 24), [(1.3 * v, 0.4)], tips, [(-1.3 * v, 0.4)]])
    else:
        pts = _ellipse_pts(0, -0.55, 1.18 * v, 1.35 * v, 0, 360, 40)
    cv.outlined(f(pts), _darker(look.hair, 0.85), look.line, lw)


def _draw_body(cv: _Canvas, f: _Frame, look: Look, lw: float) -> None:
    neck = np.array([(-0.32, 0.6), (0.32, 0.6), (0.36, 1.6), (-0.36, 1.6)])
    shoulders = np.concatenate([[(-0.4, 1.45)], _bezier((-0.4, 1.45), (-1.6, 1.55), (-1.9, 2.4), n=8),
                                [(-2.0, 4.5), (2.0, 4.5)], _bezier((1.9, 2.4), (1.6, 1.55), (0.4, 1.45), n=8)])
    cv.outlined(f(neck), look.skin, look.line, lw)
    cv.outlined(f(shoulders), look.clothes, look.line, lw)
    cv.line(f(_bezier((-0.4, 1.45), (0, 2.0), (0.4, 1.45))), look.line, lw)  # collar
    if look.shade:
        cv.tint(f(np.array([(-0.34, 0.6), (0.34, 0.6), (0.35, 1.1), (-0.35, 0.95)])), _darker(look.skin, 0.75), 0.7)


def _draw_ears(cv: _Canvas, f: _Frame, look: Look, lw: float) -> None:
    if look.ears == "human":
        for side in (-1, 1):
            cv.outlined(f(_ellipse_pts(side * 1.02, 0.2, 0.16, 0.24)), look.skin, look.line, lw * 0.8)
    elif look.ears == "animal":
        for side in (-1, 1):
            tri = np.array([(side * 0.35, -1.55), (side * 1.15, -2.5), (side * 1.05, -1.2)]) * [look.hair_volume, 1]
            cv.outlined(f(tri), look.hair, look.line, lw)
            inner = (tri - tri.mean(axis=0)) * 0.55 + tri.mean(axis=0)
            cv.fill(f(inner), _mix(look.hair, (255, 190, 200), 0.6))


def _draw_eye(cv: _Canvas, f: _Frame, look: Look, side: int, lw: float, rng: np.random.Generator) -> None:
    ex, ey = side * look.eye_x, look.eye_y
    w, h = look.eye_w, look.eye_h
    tilt = math.radians(look.eye_tilt)
    image_side = -side if f.p.mirror else side
    if image_side * f.p.turn > 0:  # the far eye of a three-quarter view is narrower
        w *= 1 - 0.35 * abs(f.p.turn)
    c, s = math.cos(tilt), math.sin(tilt)

    def at(pts: np.ndarray) -> np.ndarray:
        """Eye-local (u outward, v down) -> face units, tilted about the eye centre."""
        u, v = np.asarray(pts, float).T
        return np.stack([ex + side * (u * c + v * s), ey - u * s + v * c], axis=1)

    depth = 1.0
    if look.eye in ("happy", "closed"):
        bend = -1 if look.eye == "happy" else 1
        arc = _bezier((-w, 0), (0, bend * h * 0.9), (w, 0))
        cv.fill(f(_taper(at(arc), 0.0, 0.0, lw * 2.4 / f.p.scale), depth), look.line)
        return
    top = -h if look.eye != "half" else -h * 0.35
    inner, outer = (-w, 0.15 * h), (w * 1.02, -0.1 * h)
    sharp = 0.3 if look.eye == "sharp" else (0.6 if look.eye == "almond" else 0.9)
    upper = _bezier(inner, (-w * 0.6, top * 1.25 * sharp + top * (1 - sharp)), (w * 0.6, top * 1.2), outer)
    lower = _bezier(outer, (w * 0.6, h * 0.85 * sharp + 0.3 * h), (-w * 0.5, h * 0.9), inner)
    white = at(np.concatenate([upper, lower[1:]]))
    cv.fill(f(white, depth), (250, 250, 252))
    # Iris and pupil, clipped to the eye white.
    layer = _Canvas(*cv.alpha.shape)
    iris_c = (ex + side * float(rng.uniform(-0.25, 0.25)) * w * 0.5, ey + 0.12 * h)
    iris = _ellipse_pts(iris_c[0], iris_c[1], 0.62 * w, 1.0 * h)
    layer.fill(f(iris, depth), look.iris)
    layer.fill(f(_ellipse_pts(iris_c[0], iris_c[1] - 0.35 * h, 0.62 * w, 0.6 * h, 180, 360), depth), _darker(look.iris, 0.6))
    layer.fill(f(_ellipse_pts(iris_c[0], iris_c[1] + 0.05 * h, 0.28 * w, 0.48 * h), depth), _darker(look.iris, 0.25))
    layer.line(f(iris, depth), _darker(look.iris, 0.4), lw * 0.7, closed=True)
    for k in range(look.highlights):
        hx, hy = iris_c[0] + (-0.25 + 0.45 * k) * w * (1 if k else 1), iris_c[1] + (-0.4 + 0.7 * k) * h
        r = (0.2 if k == 0 else 0.1) * w
        layer.fill(f(_ellipse_pts(hx, hy, r, r * 1.2), depth), (255, 255, 255))
    mask = np.zeros(cv.alpha.shape, np.uint8)
    cv2.fillPoly(mask, _Canvas._fixed(f(white, depth)), 255, cv2.LINE_AA, _SHIFT)
    m = (mask.astype(np.float32) / 255 * (layer.alpha.astype(np.float32) / 255))[..., None]
    cv.rgb[:] = np.round(cv.rgb * (1 - m) + layer.rgb * m).astype(np.uint8)
    # Upper lash line (thick, tapered, with a wing), lower lash.
    lid = _taper(f(at(upper), depth), lw * 0.8, lw * 1.2, lw * 2.8)
    cv.fill(lid, look.line)
    if look.lashes:
        wing = _bezier(outer, (w * 1.25, -0.3 * h), (w * 1.35, -0.1 * h), n=6)
        cv.fill(_taper(f(at(wing), depth), lw * 1.6, 0.3), look.line)
    cv.line(f(at(lower[: len(lower) // 2]), depth), look.line, lw * 0.6)


def _draw_face_features(cv: _Canvas, f: _Frame, look: Look, lw: float, rng: np.random.Generator) -> None:
    for side in (-1, 1):
        brow = _bezier((side * (look.eye_x - look.eye_w), -0.42), (side * look.eye_x, -0.55), (side * (look.eye_x + look.eye_w * 1.1), -0.45))
        cv.fill(_taper(f(brow, 1.0), lw * 1.2, lw * 0.3, lw * 1.4), _darker(look.hair, 0.55))
        _draw_eye(cv, f, look, side, lw, rng)
    if look.blush > 0:
        for side in (-1, 1):
            cv.tint(f(_ellipse_pts(side * 0.55, look.eye_y + 0.38, 0.22, 0.09), 1.0), (255, 120, 130), 0.35 * look.blush)
    ny = 0.5 + look.eye_y * 0.5
    if look.nose == "dot":
        cv.fill(f(_ellipse_pts(0, ny, 0.025, 0.02), 1.3), _darker(look.skin, 0.6))
    elif look.nose == "line":
        cv.line(f(np.array([(0.02, ny - 0.08), (-0.02, ny)]), 1.3), _darker(look.skin, 0.55), lw * 0.7)
    elif look.nose == "angle":
        cv.line(f(np.array([(0.03, ny - 0.1), (-0.04, ny), (0.02, ny + 0.02)]), 1.3), _darker(look.line, 1.0), lw * 0.6)
    elif look.nose == "shadow":
        cv.fill(f(np.array([(0.0, ny - 0.12), (0.05, ny), (-0.03, ny)]), 1.3), _darker(look.skin, 0.8))
    my = 0.74 + 0.1 * (look.face_len - 1)
    mw = 0.12 + 0.08 * look.mouth_open
    mouth_dark, tongue = (120, 40, 50), (235, 120, 130)
    if look.mouth == "line":
        cv.line(f(_bezier((-mw * 0.6, my), (0, my + 0.02), (mw * 0.6, my)), 1.0), look.line, lw * 0.8)
    elif look.mouth == "smile":
        cv.line(f(_bezier((-mw, my - 0.03), (0, my + 0.06), (mw, my - 0.03)), 1.0), look.line, lw * 0.8)
    elif look.mouth == "open":
        h = 0.06 + 0.14 * look.mouth_open
        pts = np.concatenate([_bezier((-mw, my - 0.02), (0, my + 0.01), (mw, my - 0.02), n=8), _bezier((mw, my - 0.02), (0, my + 2 * h), (-mw, my - 0.02), n=10)[1:]])
        cv.outlined(f(pts, 1.0), mouth_dark, look.line, lw * 0.8)
        cv.fill(f(_ellipse_pts(0, my + h * 0.9, mw * 0.55, h * 0.45, 180, 360), 1.0), tongue)
    elif look.mouth == "cat":
        cv.line(f(np.concatenate([_bezier((-mw, my - 0.02), (-mw / 2, my + 0.05), (0, my - 0.01), n=8), _bezier((0, my - 0.01), (mw / 2, my + 0.05), (mw, my - 0.02), n=8)]), 1.0), look.line, lw * 0.8)
    else:
        cv.outlined(f(_ellipse_pts(0, my, 0.045, 0.05 * (1 + look.mouth_open)), 1.0), mouth_dark, look.line, lw * 0.7)


def _fringe_strands(look: Look, rng: np.random.Generator) -> list[np.ndarray]:
    """Polygons hanging from the hairline over the forehead (face units)."""
    v, tip = look.hair_volume, look.fringe_len
    if look.fringe == "blunt":
        xs = np.linspace(-1.05 * v, 1.05 * v, 12)
        bottom = [(x, tip + 0.04 * (i % 2)) for i, x in enumerate(xs)]
        return [np.concatenate([[(-1.1 * v, -1.2)], bottom, [(1.1 * v, -1.2)]])]
    n = look.strands
    part = {"side": float(rng.uniform(-0.6, -0.3)), "parted": 0.0}.get(look.fringe, float(rng.uniform(-0.2, 0.2)))
    edges = np.sort(np.concatenate([[-1.12 * v, 1.12 * v], rng.uniform(-1.0 * v, 1.0 * v, n - 1)]))
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        mid = (a + b) / 2
        lean = (mid - part) * 0.35
        tip_y = tip + float(rng.uniform(-0.15, 0.2)) + (0.25 * abs(mid) if look.fringe == "parted" else 0.0)
        tip_x = mid + lean * (tip_y + 1.3) * 0.5
        out.append(np.concatenate([
            _bezier((a, -1.35), (a - 0.05, (tip_y - 1.3) / 2), (tip_x, tip_y), n=8),
            _bezier((tip_x, tip_y), (b + 0.05, (tip_y - 1.3) / 2), (b, -1.35), n=8)[1:],
        ]))
    return out


def _draw_hair(cv: _Canvas, f: _Frame, look: Look, lw: float, rng: np.random.Generator) -> None:
    v = look.hair_volume
    cap = np.concatenate([_ellipse_pts(0, -0.8, 1.12 * v, 1.2 * v, 180, 360, 30), [(1.12 * v, -0.5), (-1.12 * v, -0.5)]])
    cv.outlined(f(cap), look.hair, look.line, lw)
    for strand in _fringe_strands(look, rng):
        cv.outlined(f(strand, 0.6), look.hair, look.line, lw)
    if look.side_locks > 0:
        for side in (-1, 1):
            bottom = CHIN + look.side_locks - 1.0
            lock = np.concatenate([
                _bezier((side * 0.8, -0.9), (side * 0.75, bottom * 0.4), (side * 0.9, bottom), n=10),
                _bezier((side * 0.9, bottom), (side * 1.3 * v, bottom * 0.4), (side * 1.15 * v, -0.9), n=10)[1:],
            ])
            cv.outlined(f(lock), look.hair, look.line, lw)
    if look.ahoge:
        cv.fill(_taper(f(_bezier((0, -1.95), (0.3, -2.5), (0.5, -2.3))), lw * 3, lw * 0.5), look.hair)
    # A highlight band across the cap.
    cv.tint(f(_ellipse_pts(0, -1.35, 0.8 * v, 0.12, 180, 360)), _mix(look.hair, (255, 255, 255), 0.5), 0.5)


# Where a hand may be, in face units (x range, y range): beside a cheek, under the
# chin, raised beside the head, on the chest. An x range that starts above 0 is one
# side's; the hand goes to either side.
_HAND_SPOTS = (((1.2, 1.9), (-0.2, 1.0)), ((-0.8, 0.8), (1.2, 2.0)), ((1.5, 2.3), (-1.4, -0.2)), ((-1.5, 1.5), (2.0, 3.6)))


def _draw_hand(cv: _Canvas, f: _Frame, look: Look, lw: float, rng: np.random.Generator) -> None:
    """One hand, open, making a V or a fist, at a random spot and angle (face units)."""
    (x0, x1), (y0, y1) = _HAND_SPOTS[int(rng.integers(len(_HAND_SPOTS)))]
    side = 1 if rng.random() < 0.5 else -1
    centre = np.array([side * rng.uniform(x0, x1) if x0 > 0 else rng.uniform(x0, x1), rng.uniform(y0, y1)])
    size = float(rng.uniform(0.9, 1.5))  # a hand is about as long as the face is high
    angle = float(rng.uniform(-np.pi, np.pi))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    extended = {"open": (0, 1, 2, 3), "v": (1, 2), "fist": ()}[str(rng.choice(["open", "v", "fist"]))]

    def place(pts: np.ndarray) -> np.ndarray:
        return f(centre + (np.asarray(pts) * size) @ rot.T, 0.0)

    for k in range(4):
        x = -0.36 + 0.24 * k
        length = (0.6 if k in (1, 2) else 0.48) if k in extended else 0.16
        curve = _bezier((x, -0.35), (x * 1.1, -0.35 - length / 2), (x * 1.2, -0.35 - length), n=8)
        cv.outlined(place(_taper(curve, 0.22, 0.16)), look.skin, look.line, lw)
    thumb = _bezier((0.35, 0.1), (0.6, -0.05), (0.75, -0.35), n=8)
    cv.outlined(place(_taper(thumb, 0.24, 0.16)), look.skin, look.line, lw)
    cv.outlined(place(_ellipse_pts(0, 0, 0.48, 0.5, n=24)), look.skin, look.line, lw)
    if not extended:  # a fist: the knuckle line
        cv.line(place(_bezier((-0.4, -0.3), (0, -0.42), (0.4, -0.3))), look.line, lw * 0.8)


def _draw_bow(cv: _Canvas, f: _Frame, look: Look, lw: float, rng: np.random.Generator) -> None:
    """A hair bow (two loops, a knot, sometimes tails) on one side of the head."""
    side = 1 if rng.random() < 0.5 else -1
    cx, cy = side * rng.uniform(0.6, 1.1) * look.hair_volume, float(rng.uniform(-1.7, -1.0))
    w = float(rng.uniform(0.35, 0.7))
    colour = look.bow
    for d in (-1, 1):
        loop = np.array([(cx, cy), (cx + d * w, cy - 0.6 * w), (cx + d * 1.1 * w, cy + 0.5 * w)])
        cv.outlined(f(loop, 0.3), colour, look.line, lw)
    if rng.random() < 0.5:
        for d in (-1, 1):
            tail = _bezier((cx, cy), (cx + d * 0.3 * w, cy + w), (cx + d * 0.5 * w, cy + 1.8 * w), n=8)
            cv.outlined(f(_taper(tail, 0.25 * w, 0.35 * w), 0.3), _darker(colour, 0.85), look.line, lw)
    cv.outlined(f(_ellipse_pts(cx, cy, 0.18 * w, 0.22 * w, n=16), 0.3), _darker(colour, 0.9), look.line, lw)


def _draw_back_of_head(cv: _Canvas, f: _Frame, look: Look, lw: float) -> None:
    head = _ellipse_pts(0, -0.5, 1.15 * look.hair_volume, 1.5, 0, 360)
    cv.outlined(f(head), look.hair, look.line, lw)
    for x in np.linspace(-0.7, 0.7, 5):
        cv.line(f(_bezier((0, -1.8), (x, -0.6), (x * 1.2, 0.9))), _darker(look.hair, 0.7), lw * 0.7)


def face_box(look: Look, place: Placement) -> tuple[float, float, float, float]:
    """The face box in pixels: brows (y = BOX_TOP) to chin, cheek to cheek."""
    outline = _face_outline(look)
    below = outline[outline[:, 1] >= BOX_TOP]
    region = np.concatenate([below, [(-1.0, BOX_TOP), (1.0, BOX_TOP)]])
    pts = _Frame(place)(region, 0.0)
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def draw_character(
    look: Look, place: Placement, height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Draw ``look`` at ``place`` on a new layer: (rgb, alpha, face mask or None for a back view)."""
    cv = _Canvas(height, width)
    f = _Frame(place)
    lw = max(1.0, f.px(look.line_w))
    _draw_back_hair(cv, f, look, lw)
    _draw_body(cv, f, look, lw)
    # Hands and bow draw from their own stream, so adding them leaves the face's features as they were.
    extras = np.random.default_rng(int(rng.integers(1 << 62)))
    for _ in range(look.hands):  # under the face and hair: a hand never hides the face it belongs to
        _draw_hand(cv, f, look, lw, extras)
    if look.back_view:
        _draw_back_of_head(cv, f, look, lw)
        return cv.rgb, cv.alpha, None
    _draw_ears(cv, f, look, lw)
    outline = f(_face_outline(look))
    cv.fill(f(_ellipse_pts(0, -0.8, 1.05, 1.15)), look.skin)
    cv.outlined(outline, look.skin, look.line, lw)
    if look.shade:
        cv.tint(f(np.array([(-1.0, -1.0), (1.0, -1.0), (1.0, look.fringe_len + 0.2), (-1.0, look.fringe_len + 0.12)]), 0.6), _darker(look.skin, 0.82), 0.8)
    _draw_face_features(cv, f, look, lw, rng)
    _draw_hair(cv, f, look, lw, rng)
    if look.bow is not None:
        _draw_bow(cv, f, look, lw, extras)
    face = np.zeros((height, width), np.uint8)
    cv2.fillPoly(face, _Canvas._fixed(outline), 255, cv2.LINE_8, _SHIFT)
    return cv.rgb, cv.alpha, face

"""The four shader styles (AnimeCeleb S.1-S.4), one registry entry each.

Every style is emission-only shading of MMD's material terms
(``factory.render.materials``): a colour computed in the node tree from the
texture, the material values, the normal and the light direction, so Cycles
samples no light and a few samples only anti-alias. A style has:

- `color`: the terms -> the surface colour (display values);
- `edges`: whether the inverted-hull outline of edge-flagged materials shows;
- `post`: an optional function over the rendered RGBA array (line art);
- `workbench`: how Workbench draws it (Workbench ignores node trees: a flat
  texture or material colour, no toon, no outline; for previews).

| style | colour |
|---|---|
| `textured_toon` | MMD's look: base * texture, sphere, toon ramp, + specular; outline |
| `flat_cel` | flat albedo, one hard shadow step (dot(N, L) < 0.15 -> 0.72) x brightness; outline |
| `soft_shaded` | albedo x (0.35 + 0.65 half-Lambert), x brightness, + specular; no outline |
| `line_art` | albedo, then ink where colour or alpha changes (`line_drawing`), white fill |

Brightness = 1 + (light - 0.6) / 2 (MMD's default light is 154/255, about
0.6), so a sample's light intensity U[0.3, 0.9] acts in every shaded style
(0.85 to 1.15); line art ignores it. The
registry is keyed by the names in ``factory.render.sampling.STYLES``; a test
keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:
    import bpy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "factory.render.styles needs Blender's Python module: pip install bpy==5.0.1 (Python 3.11 only)"
    ) from exc

from factory.render.materials import MMD_LIGHT, ColorBuilder, Terms


@dataclass(frozen=True)
class Workbench:
    """How Workbench draws a style (scene.display.shading fields)."""

    light: str  # STUDIO | FLAT | MATCAP
    color_type: str  # TEXTURE | MATERIAL | SINGLE


@dataclass(frozen=True)
class Style:
    """One shader style: its node-tree colour, outline, post-processing and Workbench look."""

    name: str
    color: ColorBuilder
    workbench: Workbench
    edges: bool = False
    post: Callable[[np.ndarray], np.ndarray] | None = None


def _brightness(t: Terms):
    """1 at MMD's default light, 0.85 at 0.3, 1.15 at 0.9: a gentle scale that keeps textures readable."""
    return t.g.math("MULTIPLY_ADD", t.light, 0.5, 1.0 - 0.5 * MMD_LIGHT)


def _smoothstep(t: Terms, x, edge: float, width: float):
    """0 below edge - width/2, 1 above edge + width/2, smooth between (anti-aliases a hard step)."""
    g = t.g
    s = g.math("DIVIDE", g.math("SUBTRACT", x, edge - width / 2), width)
    s = g.math("MINIMUM", g.math("MAXIMUM", s, 0.0), 1.0)
    return g.math("MULTIPLY", g.math("MULTIPLY", s, s), g.math("SUBTRACT", 3.0, g.math("MULTIPLY", s, 2.0)))


def _textured_toon(t: Terms):
    """MMD's shading: clamp(diffuse * light + ambient) * texture, sphere, toon, + specular."""
    return t.specular(t.toon(t.sphere(t.mmd_color)))


CEL_SHADOW, CEL_EDGE = 0.72, 0.15


def _flat_cel(t: Terms):
    """Flat albedo in two tones: lit, or x 0.72 where dot(N, L) < 0.15; times brightness."""
    g = t.g
    shade = g.math("MULTIPLY_ADD", _smoothstep(t, t.n_dot_l, CEL_EDGE, 0.04), 1.0 - CEL_SHADOW, CEL_SHADOW)
    return g.clamp01(g.scale(t.albedo, g.math("MULTIPLY", shade, _brightness(t))))


def _soft_shaded(t: Terms):
    """Smooth half-Lambert ((0.5 + 0.5 N.L)^2) over a 0.35 ambient floor, times brightness, + specular."""
    g = t.g
    wrap = g.math("MULTIPLY_ADD", t.n_dot_l, 0.5, 0.5)
    shade = g.math("MULTIPLY_ADD", g.math("MULTIPLY", wrap, wrap), 0.65, 0.35)
    return t.specular(g.clamp01(g.scale(t.albedo, g.math("MULTIPLY", shade, _brightness(t)))))


def _line_art_fill(t: Terms):
    """The flat albedo; `line_drawing` turns it into ink lines after the render."""
    return t.albedo


_LUMA = np.array([0.299, 0.587, 0.114])
INK_LOW, INK_HIGH = 0.05, 0.35  # colour-gradient magnitude (0..1 per unit, Sobel / 4) from no ink to full


def line_drawing(rgba: np.ndarray) -> np.ndarray:
    """Ink lines where the visible colour or the alpha changes; white elsewhere, the render's alpha kept.

    Works on what the render shows, so a part that is hidden (alpha 0) or a
    transparent texel draws no line. The gradient is a Sobel filter (scaled
    to 0..1) of each colour channel, composited over white, taking the
    largest; ink ramps up between `INK_LOW` and `INK_HIGH`.
    """
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    color = rgba[..., :3].astype(np.float32) / 255 * alpha + (1.0 - alpha)
    p = np.pad(color, ((1, 1), (1, 1), (0, 0)), mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    grad = np.sqrt(gx**2 + gy**2).max(axis=2) / 4
    ink = np.clip((grad - INK_LOW) / (INK_HIGH - INK_LOW), 0.0, 1.0)
    out = np.empty_like(rgba)
    out[..., :3] = np.round(255 * (1.0 - ink))[..., None]
    out[..., 3] = rgba[..., 3]
    return out


STYLE_REGISTRY: dict[str, Style] = {
    style.name: style
    for style in (
        Style("textured_toon", _textured_toon, Workbench("FLAT", "TEXTURE"), edges=True),
        Style("flat_cel", _flat_cel, Workbench("FLAT", "TEXTURE"), edges=True),
        Style("soft_shaded", _soft_shaded, Workbench("STUDIO", "TEXTURE")),
        Style("line_art", _line_art_fill, Workbench("FLAT", "TEXTURE"), post=line_drawing),
    )
}


def style(name: str) -> Style:
    """The registered style called `name`; ValueError names the known ones."""
    try:
        return STYLE_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown shader style '{name}'; known: {sorted(STYLE_REGISTRY)}") from None


def apply_workbench(scene: bpy.types.Scene, look: Workbench) -> None:
    """Set Workbench's render shading to a style's look."""
    shading = scene.display.shading
    shading.light = look.light
    shading.color_type = look.color_type

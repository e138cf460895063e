"""The four shader styles (AnimeCeleb S.1-S.4), one registry entry each.

A style has two faces, because the engines read different things:

- a node-tree builder for Cycles and EEVEE: it gets the material's base
  colour socket (texture or diffuse colour) and returns the surface shader;
  a flat emission term stands in for ambient light, so shading stays clean at
  8-16 samples with no denoiser;
- Workbench shading settings (light model, colour source, outline), since
  Workbench ignores node trees.

`line_art` also turns on Freestyle lines under Cycles and EEVEE. Workbench
gets no lines: Freestyle there slowed from 4 s to 30 s per frame over three
frames (measured), and Workbench's object outline is not drawn in final
renders, so Workbench (previews, inspection) shows line_art as flat texture
colours. The registry is keyed by the names
in ``factory.render.sampling.STYLES``; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

try:
    import bpy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "factory.render.styles needs Blender's Python module: pip install bpy==5.0.1 (Python 3.11 only)"
    ) from exc

# (node tree, base colour output socket) -> surface shader output socket
ShaderBuilder = Callable[["bpy.types.NodeTree", "bpy.types.NodeSocket"], "bpy.types.NodeSocket"]


@dataclass(frozen=True)
class Workbench:
    """How Workbench draws a style (scene.display.shading fields)."""

    light: str  # STUDIO | FLAT | MATCAP
    color_type: str  # TEXTURE | MATERIAL | SINGLE


@dataclass(frozen=True)
class Style:
    """One shader style: its node tree, its Workbench look and whether it draws lines."""

    name: str
    build: ShaderBuilder
    workbench: Workbench
    freestyle: bool = False


def _node(tree, kind: str, **inputs):
    node = tree.nodes.new(kind)
    for name, value in inputs.items():
        node.inputs[name].default_value = value
    return node


def _add(tree, a, b):
    node = tree.nodes.new("ShaderNodeAddShader")
    tree.links.new(a, node.inputs[0])
    tree.links.new(b, node.inputs[1])
    return node.outputs[0]


def _ambient(tree, color, strength: float):
    """A flat emission of the base colour: constant 'ambient' light without noise."""
    emission = _node(tree, "ShaderNodeEmission", Strength=strength)
    tree.links.new(color, emission.inputs["Color"])
    return emission.outputs[0]


def _toon(tree, color, size: float, smooth: float):
    toon = _node(tree, "ShaderNodeBsdfToon", Size=size, Smooth=smooth)
    tree.links.new(color, toon.inputs["Color"])
    return toon.outputs[0]


def _textured_toon(tree, color):
    """S.1: texture colours, two-tone toon diffuse with a soft terminator."""
    return _add(tree, _toon(tree, color, 0.7, 0.15), _ambient(tree, color, 0.4))


def _flat_cel(tree, color):
    """S.2: flat colour regions, one hard light/shadow step."""
    return _add(tree, _toon(tree, color, 0.9, 0.0), _ambient(tree, color, 0.55))


def _soft_shaded(tree, color):
    """S.3: smooth Lambert shading of the texture."""
    diffuse = _node(tree, "ShaderNodeBsdfDiffuse")
    tree.links.new(color, diffuse.inputs["Color"])
    return _add(tree, diffuse.outputs[0], _ambient(tree, color, 0.25))


def _line_art(tree, color):
    """S.4: a pale, mostly white fill (lines come from Freestyle)."""
    mix = _node(tree, "ShaderNodeMix", Factor=0.8)
    mix.data_type = "RGBA"
    tree.links.new(color, mix.inputs["A"])
    mix.inputs["B"].default_value = (1.0, 1.0, 1.0, 1.0)
    return _ambient(tree, mix.outputs["Result"], 1.0)


STYLE_REGISTRY: dict[str, Style] = {
    style.name: style
    for style in (
        Style("textured_toon", _textured_toon, Workbench("STUDIO", "TEXTURE")),
        Style("flat_cel", _flat_cel, Workbench("FLAT", "MATERIAL")),
        Style("soft_shaded", _soft_shaded, Workbench("MATCAP", "TEXTURE")),
        # no lines under Workbench (see the module docstring): a flat textured look instead
        Style("line_art", _line_art, Workbench("FLAT", "TEXTURE"), freestyle=True),
    )
}


def style(name: str) -> Style:
    """The registered style called `name`; ValueError names the known ones."""
    try:
        return STYLE_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown shader style '{name}'; known: {sorted(STYLE_REGISTRY)}") from None


def apply_workbench(scene: "bpy.types.Scene", look: Workbench) -> None:
    """Set Workbench's render shading to a style's look."""
    shading = scene.display.shading
    shading.light = look.light
    shading.color_type = look.color_type

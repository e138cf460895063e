"""The four shader styles with real bpy (Cycles, emission-only) on Gene and on a synthetic character.

Each style: transparent background and an opaque character; little noise
(face-region RMSE of a default-sample render against a 128-sample one);
Gene's hidden (alpha 0) materials draw nothing in any style, line art
included; the outline hull holds exactly the edge-flagged materials and
shows only in the styles that draw edges.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("bpy")

import bpy

from factory.render.jobs import RenderSettings
from factory.render.materials import EDGE_FLAG, edge_weights
from factory.render.scene import ModelScene
from factory.render.styles import STYLE_REGISTRY, line_drawing
from factory.synthetic.character import build_character, write_character

pytestmark = pytest.mark.slow
from tests.realdata import GENE  # noqa: E402
SETTINGS = RenderSettings(engine="cycles", resolution=256)  # the default sampling, adaptive 8-64
NOISE_RMSE = 3.0  # of 255, vs 128 fixed samples at 256 px: issue 12's goal (measured 0.5-2.3)
STYLES = sorted(STYLE_REGISTRY)


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.int16)


def render_at(scene: ModelScene, samples: int) -> np.ndarray:
    """A render at a fixed `samples` a pixel."""
    return rgba(scene.render_fixed(samples))


class Staged:
    """One imported scene at a time: Blender holds one file, so a new import wipes the last one."""

    def __init__(self, folder: Path):
        self.folder, self.kind, self.scene = folder, None, None

    def get(self, kind: str) -> ModelScene:
        if kind != self.kind:
            self.close()
            if kind == "gene" and not GENE.is_file():
                pytest.skip(f"real MMD model not found at {GENE} (../shared/realdata)")
            path = GENE if kind == "gene" else write_character(build_character(), self.folder)
            self.scene, self.kind = ModelScene.from_file(path, SETTINGS), kind
        return self.scene

    def close(self) -> None:
        if self.scene is not None:
            self.scene.close()
        self.kind, self.scene = None, None


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    holder = Staged(tmp_path_factory.mktemp("styles"))
    yield holder
    holder.close()


@pytest.fixture
def gene(staged):
    return staged.get("gene")


@pytest.fixture
def synthetic(staged):
    return staged.get("synthetic")


def _hidden(scene: ModelScene) -> list[int]:
    return [i for i, m in enumerate(scene.model.materials) if m.diffuse[3] == 0]


@pytest.mark.parametrize("style_name", STYLES)
def test_hidden_materials_draw_nothing(gene, style_name):
    """Alpha-0 parts render exactly as if they were not there; shown (alpha 1) they change pixels."""
    hidden = _hidden(gene)
    assert hidden, "Gene has alpha-0 overlay materials (青ざめ, イライラ)"
    gene.pose({}, style=style_name)
    drawn = render_at(gene, 4)
    mesh = gene.mesh_obj.data
    kept = [mesh.materials[i] for i in hidden]
    void = bpy.data.materials.new("void")
    void.node_tree.nodes.clear()
    out = void.node_tree.nodes.new("ShaderNodeOutputMaterial")
    void.node_tree.links.new(void.node_tree.nodes.new("ShaderNodeBsdfTransparent").outputs[0], out.inputs[0])
    try:
        for i in hidden:
            mesh.materials[i] = void
        absent = render_at(gene, 4)
        for i, mat in zip(hidden, kept):
            mesh.materials[i] = mat
            mat.node_tree.nodes["mmd_alpha"].outputs[0].default_value = 1.0
        shown = render_at(gene, 4)
    finally:
        for i, mat in zip(hidden, kept):
            mesh.materials[i] = mat
            mat.node_tree.nodes["mmd_alpha"].outputs[0].default_value = 0.0
    assert np.array_equal(drawn, absent), f"{style_name}: a hidden material changed pixels"
    assert (np.abs(shown - drawn).max(axis=2) > 24).sum() > 20  # the hidden part is in view


def test_outline_hull_holds_exactly_the_edge_flagged_materials(gene):
    model = gene.model
    weights, width = edge_weights(model, 1.0)
    flagged = np.zeros(len(model.vertices), bool)
    start = 0
    for mat in model.materials:
        if mat.flags & EDGE_FLAG:
            flagged[model.faces[start // 3:(start + mat.index_count) // 3].ravel()] = True
        start += mat.index_count
    assert np.array_equal(weights > 0, flagged) and width > 0
    gene.outline.hide_viewport = False  # evaluated in the view layer only while shown there
    try:
        depsgraph = bpy.context.evaluated_depsgraph_get()
        assert len(gene.outline.evaluated_get(depsgraph).data.vertices) == flagged.sum()
    finally:
        gene.outline.hide_viewport = True


@pytest.mark.parametrize("style_name", STYLES)
def test_outline_shows_only_in_styles_with_edges(gene, style_name):
    gene.pose({}, style=style_name)
    with_hull = render_at(gene, 4)
    gene.outline.hide_render = True
    try:
        without = render_at(gene, 4)
    finally:
        gene.set_style(style_name)
    changed = (np.abs(with_hull - without).max(axis=2) > 24).sum()
    if STYLE_REGISTRY[style_name].edges:
        assert changed > 30
    else:
        assert changed == 0 and gene.outline.hide_render


# grouped by model, so each model is imported once
@pytest.mark.parametrize(("model", "style_name"), [(m, s) for m in ("gene", "synthetic") for s in STYLES])
def test_style_is_transparent_around_an_opaque_character_and_low_noise(staged, model, style_name):
    staged = staged.get(model)
    staged.pose({}, yaw=12, pitch=5, style=style_name)
    image = rgba(staged.render())
    for corner in (image[:4, :4], image[:4, -4:]):
        assert corner[..., 3].max() == 0
    assert image[..., 3].max() == 255
    x0, y0, x1, y1 = (round(v) for v in staged.face_bbox())
    face = np.s_[max(y0, 0):y1, max(x0, 0):x1]
    reference = render_at(staged, 128)
    cycles = staged.scene.cycles  # the fixed-sample reference gave the scene its own sampling back
    assert (cycles.use_adaptive_sampling, cycles.samples, cycles.adaptive_min_samples) == (True, 64, 8)
    rmse = float(np.sqrt(np.mean((image[face] - reference[face]) ** 2.0)))
    print(f"{style_name}: face RMSE {rmse:.2f}/255, {SETTINGS.metadata()} vs 128 fixed samples")
    assert rmse <= NOISE_RMSE
    if STYLE_REGISTRY[style_name].post is None:  # the shading is flat and smooth: light changes it evenly
        assert image[face][..., :3].std() > 5  # not one flat silhouette colour


def test_light_intensity_brightens_every_shaded_style(synthetic):
    for name in ("textured_toon", "flat_cel", "soft_shaded"):
        synthetic.pose({}, light_intensity=0.9, style=name)
        bright = render_at(synthetic, 2)
        synthetic.pose({}, light_intensity=0.3, style=name)
        dim = render_at(synthetic, 2)
        face = bright[..., 3] == 255
        assert bright[face][:, :3].mean() > dim[face][:, :3].mean() + 10, name


def test_no_edge_flag_means_no_outline(staged):
    staged.close()  # this test stages its own model
    character = build_character()
    model = dataclasses.replace(character.model, materials=tuple(
        dataclasses.replace(m, flags=m.flags & ~EDGE_FLAG) for m in character.model.materials))
    scene = ModelScene(model, None, dataclasses.replace(SETTINGS, samples=1))
    try:
        assert scene.outline is None
        scene.pose({}, style="textured_toon")
        assert rgba(scene.render())[..., 3].max() == 255
    finally:
        scene.close()


def test_line_drawing_inks_colour_and_alpha_edges_only():
    image = np.zeros((32, 32, 4), np.uint8)
    image[8:24, 8:24] = (200, 60, 60, 255)  # a red square on a transparent background
    image[8:24, 16:24, :3] = (60, 60, 200)  # its right half blue
    lines = line_drawing(image)
    assert np.array_equal(lines[..., 3], image[..., 3])  # alpha kept: the background stays transparent
    assert lines[12:20, 15:17, 0].max(axis=1).max() < 128  # the colour boundary is inked
    assert lines[12, 11, 0] == 255 and lines[12, 20, 0] == 255  # flat areas stay white
    assert lines[12, 8, 0] < 128  # the silhouette is inked

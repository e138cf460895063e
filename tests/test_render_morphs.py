"""Inspection through the dataset's textured shading, material / UV morphs, missing textures (real bpy).

Gene (../shared/realdata/mmd/gene, a real MMD character) is imported once
per module; the synthetic characters cover what Gene lacks (a dead morph, a
missing texture). The pure morph arithmetic is tested without Blender.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from factory.render.jobs import InspectionSettings, RenderSettings
from factory.render.morph_apply import base_material_values, material_values, uv_offsets
from factory.render.sampling import STYLES
from factory.sources.pmx_model import Morph, MorphKind, morph_offset_dtype
from factory.synthetic.character import (
    SHOW_MORPH,
    UV_MORPH,
    build_character,
    write_character,
)

REPO = Path(__file__).resolve().parents[1]
from tests.realdata import GENE, GENE_DIR  # noqa: E402
INSPECT = InspectionSettings()


def _material_morph(rows: list[tuple[int, int, dict]]) -> np.ndarray:
    """A material-morph offset table from (material, operation, {field: value}) rows."""
    table = np.zeros(len(rows), dtype=morph_offset_dtype(MorphKind.MATERIAL))
    for i, (material, op, fields) in enumerate(rows):
        table[i]["index"], table[i]["operation"] = material, op
        for name, value in fields.items():
            table[i][name] = value
    return table


def _with_morphs(model, *morphs):
    return dataclasses.replace(model, morphs=model.morphs + tuple(morphs))


# -- pure: the morph arithmetic ------------------------------------------------------
def test_material_morphs_multiply_and_add_as_mmd_does():
    model = build_character(hidden_part=True).model
    n = len(model.materials)
    blush = n - 1  # the hidden part's material comes last
    show = Morph("show", "", 4, MorphKind.MATERIAL, _material_morph([(blush, 1, {"diffuse": (0, 0, 0, 1)})]))
    dim = Morph("dim", "", 4, MorphKind.MATERIAL, _material_morph(
        [(-1, 0, {"diffuse": (0.5, 0.5, 0.5, 1), "specular": (1, 1, 1), "specularity": 1, "ambient": (1, 1, 1),
                  "edge_color": (1, 1, 1, 1), "edge_size": 2, "texture_tint": (0.2, 1, 1, 1),
                  "sphere_tint": (1, 1, 1, 1), "toon_tint": (1, 1, 1, 1)})]))
    model = _with_morphs(model, show, dim)
    i_show, i_dim = len(model.morphs) - 2, len(model.morphs) - 1
    base = base_material_values(model)
    assert base["diffuse"][blush, 3] == 0.0 and base["texture_mul"].min() == 1.0 and base["texture_add"].max() == 0.0

    half = material_values(model, {i_show: 0.5})
    assert half["diffuse"][blush, 3] == pytest.approx(0.5)  # add: offset x weight
    assert np.array_equal(np.delete(half["diffuse"], blush, 0), np.delete(base["diffuse"], blush, 0))

    dimmed = material_values(model, {i_dim: 0.5})  # multiply by 1 + (offset - 1) w, on every material (-1)
    assert dimmed["diffuse"][:, :3] == pytest.approx(base["diffuse"][:, :3] * 0.75)
    assert dimmed["diffuse"][:, 3] == pytest.approx(base["diffuse"][:, 3])
    assert dimmed["edge_size"][:, 0] == pytest.approx(base["edge_size"][:, 0] * 1.5)
    assert dimmed["texture_mul"][:, 0] == pytest.approx(0.6)  # a multiply tint scales *_mul, not *_add
    assert dimmed["texture_add"].max() == 0.0
    assert material_values(model, {i_dim: 0.0, i_show: 0.0})["diffuse"] == pytest.approx(base["diffuse"])


def test_uv_offsets_are_weighted_sums_on_layer_0():
    model = build_character(uv_morph=True).model
    index = model.morph_index(UV_MORPH)
    eyes = model.morphs[index].offsets["index"]
    offsets = uv_offsets(model, {index: 0.5})
    assert offsets[eyes, 0] == pytest.approx(0.125) and offsets[eyes, 1] == pytest.approx(0.0)
    assert np.count_nonzero(offsets.any(axis=1)) == len(eyes)
    assert not uv_offsets(model, {model.morph_index("あ"): 1.0}).any()  # a vertex morph moves no UV


def test_inspection_renders_the_dataset_path_in_a_registered_textured_style():
    assert INSPECT.style in STYLES and INSPECT.settings.engine == RenderSettings().engine
    assert INSPECT.settings.resolution < RenderSettings().resolution  # cheaper, same shading
    with pytest.raises(ValueError, match="unknown inspection style"):
        InspectionSettings(style="no_such_style")


def test_synthetic_surface_morphs_are_no_targets():
    from factory.render.morphs import map_morphs

    character = build_character(hidden_part=True, uv_morph=True)
    model = character.model
    assert model.materials[-1].diffuse[3] == 0.0
    assert {model.morphs[i].name: model.morphs[i].kind for i in (-2, -1)} == {
        SHOW_MORPH: MorphKind.MATERIAL, UV_MORPH: MorphKind.UV}
    targets = {m.name: m.target for m in map_morphs(model.morphs)}
    assert targets[SHOW_MORPH] is None and targets[UV_MORPH] is None
    assert character.intended_targets[SHOW_MORPH] is None


# -- real bpy ------------------------------------------------------------------------
def _rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.int16)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.abs(a - b) > INSPECT.pixel_threshold).any(axis=2)


@pytest.fixture(scope="module")
def scene_mod():
    pytest.importorskip("bpy")
    from factory.render import scene

    return scene


@pytest.fixture(scope="module")
def gene(scene_mod):
    """Gene imported once, with the inspection's settings."""
    if not GENE.exists():
        pytest.skip(f"real MMD model not found at {GENE} (../shared/realdata)")
    staged = scene_mod.ModelScene.from_file(GENE, INSPECT.settings)
    yield staged
    staged.close()


def test_group_morphs_expand_into_material_and_uv_morphs(scene_mod):
    model = build_character(hidden_part=True, uv_morph=True).model
    show, uv = model.morph_index(SHOW_MORPH), model.morph_index(UV_MORPH)
    table = np.zeros(2, dtype=morph_offset_dtype(MorphKind.GROUP))
    table["index"], table["weight"] = (show, uv), (1.0, 0.5)
    model = _with_morphs(model, Morph("group", "", 4, MorphKind.GROUP, table))
    assert scene_mod.expand_morphs(model, {len(model.morphs) - 1: 0.8}) == pytest.approx({show: 0.8, uv: 0.4})


@pytest.mark.slow
def test_gene_material_and_uv_morphs_change_pixels(gene):
    """青ざめ (pale: a hidden overlay made visible), いらいら (an anger mark) and メッシュなし (a UV morph)."""
    model = gene.model
    gene.pose({}, style=INSPECT.style)
    neutral = _rgba(gene.render())
    counts = {}
    for name in ("青ざめ", "いらいら", "メッシュなし"):
        index = model.morph_index(name)
        assert model.morphs[index].kind in (MorphKind.MATERIAL, MorphKind.UV)
        gene.pose({index: 1.0}, style=INSPECT.style)
        counts[name] = int(_changed(neutral, _rgba(gene.render())).sum())
    gene.pose({}, style=INSPECT.style)
    back = int(_changed(neutral, _rgba(gene.render())).sum())
    print(f"Gene at {INSPECT.settings.resolution} px, changed pixels: {counts}, after reset {back}")
    # at 256 px mmd_tools changes 2,284 (pale) and 732 (UV): a quarter of that at 128 px, give or take
    assert counts["青ざめ"] > 300 and counts["メッシュなし"] > 100 and counts["いらいら"] > 5
    assert back == 0  # the next pose without them is the neutral face again


@pytest.mark.slow
def test_hidden_part_draws_nothing_in_any_style_until_its_material_morph_shows_it(scene_mod, tmp_path):
    plain, hidden = build_character(), build_character(hidden_part=True)
    renders = {}
    for label, character in (("plain", plain), ("hidden", hidden)):
        staged = scene_mod.ModelScene.from_file(write_character(character, tmp_path / label), INSPECT.settings)
        try:
            for style in STYLES:  # line art included
                staged.pose({}, style=style)
                renders[label, style] = _rgba(staged.render())
            if label == "hidden":
                blush = staged.bbox_of(character.regions["blush_left"])
                staged.pose({character.model.morph_index(SHOW_MORPH): 1.0}, style=INSPECT.style)
                renders["shown"] = _rgba(staged.render())
        finally:
            staged.close()
    drawn = {style: int(_changed(renders["plain", style], renders["hidden", style]).sum()) for style in STYLES}
    assert drawn == dict.fromkeys(STYLES, 0)  # alpha 0: nothing drawn, outline and lines included
    shown = _changed(renders["hidden", INSPECT.style], renders["shown"])
    ys, xs = np.nonzero(shown)
    assert len(ys) > 10
    x0, y0, x1, y1 = blush
    left = (xs >= x0 - 2) & (xs <= x1 + 2) & (ys >= y0 - 2) & (ys <= y1 + 2)
    assert left.sum() > 0.3 * len(xs)  # one of the two cheeks holds about half of the change


@pytest.mark.slow
def test_uv_morph_recolours_only_the_irises(scene_mod, tmp_path):
    character = build_character(uv_morph=True)
    staged = scene_mod.ModelScene.from_file(write_character(character, tmp_path), INSPECT.settings)
    try:
        staged.pose({}, style=INSPECT.style)
        neutral = _rgba(staged.render())
        eyes = staged.bbox_of(character.regions["eyes"])
        staged.pose({character.model.morph_index(UV_MORPH): 1.0}, style=INSPECT.style)
        moved = _rgba(staged.render())
    finally:
        staged.close()
    ys, xs = np.nonzero(_changed(neutral, moved))
    x0, y0, x1, y1 = eyes
    assert len(ys) > 10
    assert xs.min() >= x0 - 2 and xs.max() <= x1 + 2 and ys.min() >= y0 - 2 and ys.max() <= y1 + 2


@pytest.mark.slow
def test_missing_textures_render_in_the_diffuse_colour_and_are_listed(scene_mod, tmp_path):
    from actors.blender import image_rows
    from factory.render.jobs import RenderJob
    from factory.render.sampling import SamplingConfig

    base = build_character()
    green = dataclasses.replace(base.model, materials=tuple(
        dataclasses.replace(m, diffuse=(0.1, 0.8, 0.1, 1.0)) for m in base.model.materials))
    character = dataclasses.replace(base, model=green)
    job = {"sampling": SamplingConfig(images_per_model=2, styles=(INSPECT.style,)), "settings": INSPECT.settings}
    results = {}
    for label, texture in (("textured", True), ("missing", False)):
        path = write_character(character, tmp_path / label, texture=texture)
        results[label] = scene_mod.render_model(RenderJob(str(path), label, **job))
    assert results["textured"].missing_textures == []
    missing = results["missing"]
    assert missing.missing_textures == ["tex\\face.png"]  # as the PMX writes it
    assert any("face.png" in w for w in missing.warnings)
    image = _rgba(missing.images[0].png)
    opaque = image[image[..., 3] == 255][:, :3]
    assert len(opaque) > 1000
    r, g, b = np.median(opaque, axis=0)
    assert g > r + 40 and g > b + 40, (r, g, b)  # the (green) diffuse colour, not the skin-coloured texture
    item = {"input_id": "missing", "split": "train", "meta": {"model_file": "missing/character.pmx"}}
    rows = image_rows(item, missing, INSPECT.settings)
    assert len(rows) == 2 and json.loads(rows[0]["json"])["missing_textures"] == ["tex\\face.png"]


@pytest.mark.slow
def test_factory_annotate_on_gene_passes_its_mapped_morphs(tmp_path):
    """The real CLI on the real model: its 24 mapped expressions are alive (gene.png shows them work)."""
    pytest.importorskip("bpy")
    if not GENE.exists():
        pytest.skip(f"real MMD model not found at {GENE} (../shared/realdata)")
    done = subprocess.run([sys.executable, "-m", "factory", "annotate", "--models", str(GENE_DIR),
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = pq.read_table(tmp_path / "out" / "annotations.parquet").to_pylist()
    mapped = [r for r in rows if r["target"]]
    flags = {r["morph_name"]: r["flag"] for r in mapped}
    print(f"Gene annotate: {len(mapped)} mapped, flags {sorted(set(flags.values()))}, "
          f"changed pixels min {min(r['changed_pixels'] for r in mapped)}; {done.stdout.strip()}")
    assert len(mapped) >= 20 and not any(r["error"] for r in rows)
    alive = sum(flag != "dead" for flag in flags.values())
    assert alive >= 0.9 * len(flags), flags
    assert sum(r["use"] for r in mapped) >= 0.9 * len(mapped), flags


@pytest.mark.slow
def test_factory_annotate_inspects_with_the_engine_it_is_given(tmp_path):
    """--engine / --inspect-resolution reach the renders; the dead morph is flagged, the rest pass."""
    pytest.importorskip("bpy")
    write_character(build_character(dead_morph=True), tmp_path / "models" / "dead")
    done = subprocess.run([sys.executable, "-m", "factory", "annotate", "--models", str(tmp_path / "models"),
                           "--out", str(tmp_path / "out"), "--engine", "workbench", "--inspect-resolution", "96"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = pq.read_table(tmp_path / "out" / "annotations.parquet").to_pylist()
    flags = {r["morph_name"]: r["flag"] for r in rows if r["target"]}
    assert flags.pop("目閉じ") == "dead"
    assert set(flags.values()) == {"ok"}, flags
    bad = subprocess.run([sys.executable, "-m", "factory", "annotate", "--models", str(tmp_path / "models"),
                          "--out", str(tmp_path / "out2"), "--inspect-resolution", "4"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0 and "resolution" in bad.stderr and "Traceback" not in bad.stderr

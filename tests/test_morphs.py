"""Target morphs, pose vector layout and the source-name map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from factory.render.morphs import (
    MORPH_SLOTS,
    PITCH,
    POSE_INDEX,
    POSE_NAMES,
    POSE_SIZE,
    ROLL,
    TARGETS,
    YAW,
    Part,
    Side,
    available_targets,
    map_morphs,
    match_morph,
    normalize_name,
    pose_slots,
)
from factory.sources.pmx import parse_pmx
from factory.sources.pmx_writer import pmx_bytes
from factory.synthetic.character import build_character


@dataclass(frozen=True)
class M:
    name: str
    panel: int = 0
    name_en: str = ""


def test_counts_match_the_paper():
    assert len(TARGETS) == 23
    assert POSE_SIZE == 20 and MORPH_SLOTS == 17
    assert (YAW, PITCH, ROLL) == (17, 18, 19) and POSE_NAMES[17:] == ("yaw", "pitch", "roll")
    assert {t.part for t in TARGETS.values()} == set(Part)
    sided = [t for t in TARGETS.values() if t.side is not Side.BOTH]
    assert all(t.part in (Part.EYES, Part.EYEBROWS) for t in sided)
    assert all(t.side is Side.BOTH for t in TARGETS.values() if t.part is Part.MOUTH)


def test_pose_layout_is_the_documented_table():
    assert POSE_NAMES == (
        "eye_close_left", "eye_close_right", "eye_smile_left", "eye_smile_right",
        "brow_troubled_left", "brow_troubled_right", "brow_angry_left", "brow_angry_right",
        "brow_raise_left", "brow_raise_right", "brow_lower_left", "brow_lower_right",
        "mouth_a", "mouth_i", "mouth_u", "mouth_e", "mouth_o", "yaw", "pitch", "roll",
    )


def test_pose_slots_cover_each_morph_slot_once():
    one_sided = [name for name, t in TARGETS.items() if t.side is not Side.BOTH or t.part is Part.MOUTH]
    slots = [s for name in one_sided for s in pose_slots(name)]
    assert sorted(slots) == list(range(MORPH_SLOTS))
    for name, t in TARGETS.items():
        if t.side is Side.BOTH and t.part is not Part.MOUTH:
            assert pose_slots(name) == (POSE_INDEX[f"{name}_left"], POSE_INDEX[f"{name}_right"])


@pytest.mark.parametrize("dead", [False, True])
def test_every_synthetic_morph_maps_to_its_intended_target(dead):
    character = build_character(dead_morph=dead)
    model = parse_pmx(pmx_bytes(character.model))  # as the pipeline sees it: read from bytes
    table = map_morphs(model.morphs)
    assert len(table) == len(model.morphs) == len(character.intended_targets)
    for row in table:
        assert row.target == character.intended_targets[row.name], row
        if row.target:
            assert row.part is TARGETS[row.target].part and row.method.startswith("name")
    assert ("目閉じ" in {r.name for r in table}) is dead


def test_synthetic_morph_regions_match_their_part():
    """The morphs move the vertices of their part: eyes close, mouth opens, brows move."""
    character = build_character()
    model, regions = character.model, character.regions
    region_of_part = {Part.EYES: "eyes", Part.EYEBROWS: "brows", Part.MOUTH: "mouth"}
    by_name = {m.name: m for m in model.morphs}
    for row in map_morphs(model.morphs):
        if row.target is None:
            continue
        morph = by_name[row.name]
        region = regions[region_of_part[row.part]]
        if row.side is Side.LEFT:
            region = regions["eye_left" if row.part is Part.EYES else "brow_left"]
        if row.side is Side.RIGHT:
            region = regions["eye_right" if row.part is Part.EYES else "brow_right"]
        moved = morph.offsets["index"][np.abs(morph.offsets["offset"]).max(axis=1) > 1e-5]
        assert moved.size and np.isin(moved, region).all(), row.name
        if row.side is not Side.BOTH:  # a one-sided morph leaves the other side alone
            assert np.all(model.vertices.positions[moved, 0] * (1 if row.side is Side.LEFT else -1) > 0)

    def height(name: str | None, region: str) -> float:
        positions = model.vertices.positions.copy()
        if name:
            morph = by_name[name]
            positions[morph.offsets["index"]] += morph.offsets["offset"]
        y = positions[regions[region], 1]
        return float(y.max() - y.min())

    def mean_y(name: str | None, region: str) -> float:
        positions = model.vertices.positions.copy()
        if name:
            morph = by_name[name]
            positions[morph.offsets["index"]] += morph.offsets["offset"]
        return float(positions[regions[region], 1].mean())

    assert height("まばたき", "eye_left") < 0.2 * height(None, "eye_left")
    assert height("ウィンク２", "eye_right") == height(None, "eye_right")
    assert height("あ", "mouth") > 4 * height(None, "mouth")
    assert mean_y("上", "brows") > mean_y(None, "brows") + 0.1
    assert mean_y("下", "brows") < mean_y(None, "brows") - 0.05


@pytest.mark.parametrize(
    "morph, target, method",
    [
        (M("まばたき", 2), "eye_close", "name"),
        (M("ﾏﾊﾞﾀｷ", 2), "eye_close", "name"),  # half-width katakana
        (M("マバタキ", 0), "eye_close", "name"),  # katakana spelling, uninformative panel
        (M("まばたき右", 2), "eye_close_right", "name+side"),
        (M("左まばたき", 2), "eye_close_left", "name+side"),
        (M("ｳｨﾝｸ", 2), "eye_smile_left", "name"),
        (M("ウインク右", 2), "eye_smile_right", "name+side"),
        (M("ウィンク2右", 2), "eye_close_right", "name+side"),  # half-width digit
        (M("Blink_L", 4), "eye_close_left", "name+side"),
        (M("blink.R", 4), "eye_close_right", "name+side"),
        (M("Eye Close Right", 0), "eye_close_right", "name+side"),
        (M("困る左", 1), "brow_troubled_left", "name+side"),
        (M("真面目", 1), "brow_lower", "name"),
        (M("上", 1), "brow_raise", "name"),
        (M("ア", 3), "mouth_a", "name"),
        (M("ａ", 3), "mouth_a", "name"),  # full-width latin
        (M("表情1", 2, "blink"), "eye_close", "name_en"),
        (M("表情2", 1, "Angry_R"), "brow_angry_right", "name_en+side"),
    ],
)
def test_name_variants(morph, target, method):
    row = match_morph(0, morph)
    assert (row.target, row.method) == (target, method)
    assert row.part is TARGETS[target].part and row.side is TARGETS[target].side


@pytest.mark.parametrize(
    "morph, part, method",
    [
        (M("上", 4), None, "none"),  # 上 off the brow panel may mean "look up"
        (M("a", 0), None, "none"),  # a bare latin vowel needs the mouth panel
        (M("笑い", 1), Part.EYEBROWS, "panel"),  # the panel contradicts the name (eye smile)
        (M("あ", 2), Part.EYES, "panel"),
        (M("あ左", 3), Part.MOUTH, "panel"),  # vowels have no sides
        (M("口角上げ", 3), Part.MOUTH, "panel"),
        (M("瞳小", 2), Part.EYES, "panel"),
        (M("ぺろっ", 4), None, "none"),
        (M("", 4, ""), None, "none"),
    ],
)
def test_unmatched_names_fall_back_to_the_panel(morph, part, method):
    row = match_morph(3, morph)
    assert row.target is None and row.side is None
    assert (row.part, row.method, row.index) == (part, method, 3)


def test_normalize_name():
    assert normalize_name("ウィンク２") == normalize_name("ｳｨﾝｸ2") == "うぃんく2"
    assert normalize_name(" Eye_Close-R ") == "eyecloser"


def test_available_targets_first_source_wins():
    table = map_morphs([M("あ", 3), M("まばたき", 2), M("ア", 3), M("なにか", 4)])
    assert available_targets(table) == {"mouth_a": 0, "eye_close": 1}

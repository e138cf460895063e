"""AnimeCeleb's 23 target morphs, the 20-float pose vector, and the source-name map.

The papers (seeds 001 / 003) fix the counts but not the list: 23 target
morphs over eyes, eyebrows and mouth, eyes and brows with both / left / right
variants, and a pose vector of 17 morph values + yaw, pitch, roll. Those two
numbers force the shape: 6 two-sided semantics (3 targets, 2 pose slots
each) and 5 one-sided ones (1 target, 1 slot): 6*3 + 5 = 23, 6*2 + 5 = 17.
We take the most common MMD expressions for them:

  eyes      eye_close, eye_smile                           (both / left / right)
  eyebrows  brow_troubled, brow_angry, brow_raise, brow_lower (both / left / right)
  mouth     mouth_a, mouth_i, mouth_u, mouth_e, mouth_o

"left" and "right" are the character's own sides. A *both* target fills the
left and the right pose slot with the same weight. docs/MORPHS.md has the
tables. Source morph names are matched after normalisation (NFKC, case fold,
katakana -> hiragana, separators removed), so half / full width and kana
variants meet; side markers (左 / 右, L / R, left / right) are split off.
The morph's panel byte must not contradict the part; when no name matches,
the panel still tells the part.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Part(StrEnum):
    EYES = "eyes"
    EYEBROWS = "eyebrows"
    MOUTH = "mouth"


class Side(StrEnum):
    BOTH = "both"
    LEFT = "left"
    RIGHT = "right"


@dataclass(frozen=True)
class Semantic:
    """One expression; `sided` ones have both / left / right targets and two pose slots."""

    name: str
    part: Part
    sided: bool
    description: str


SEMANTICS: tuple[Semantic, ...] = (
    Semantic("eye_close", Part.EYES, True, "eyes closed (blink)"),
    Semantic("eye_smile", Part.EYES, True, "smiling closed eyes (^ ^)"),
    Semantic("brow_troubled", Part.EYEBROWS, True, "inner ends raised (troubled, sad)"),
    Semantic("brow_angry", Part.EYEBROWS, True, "inner ends lowered (angry)"),
    Semantic("brow_raise", Part.EYEBROWS, True, "brows raised"),
    Semantic("brow_lower", Part.EYEBROWS, True, "brows lowered (serious)"),
    Semantic("mouth_a", Part.MOUTH, False, "vowel a: mouth wide open"),
    Semantic("mouth_i", Part.MOUTH, False, "vowel i: mouth wide, teeth showing"),
    Semantic("mouth_u", Part.MOUTH, False, "vowel u: lips pursed"),
    Semantic("mouth_e", Part.MOUTH, False, "vowel e: mouth half open, wide"),
    Semantic("mouth_o", Part.MOUTH, False, "vowel o: mouth round"),
)
SEMANTIC_BY_NAME: dict[str, Semantic] = {s.name: s for s in SEMANTICS}


@dataclass(frozen=True)
class Target:
    """A target morph: a semantic on one side (BOTH for one-sided semantics)."""

    name: str
    semantic: str
    part: Part
    side: Side


def _target_name(semantic: Semantic, side: Side) -> str:
    return semantic.name if side is Side.BOTH else f"{semantic.name}_{side.value}"


def _build_targets() -> dict[str, Target]:
    targets = {}
    for s in SEMANTICS:
        for side in (Side.BOTH, Side.LEFT, Side.RIGHT) if s.sided else (Side.BOTH,):
            targets[_target_name(s, side)] = Target(_target_name(s, side), s.name, s.part, side)
    return targets


TARGETS: dict[str, Target] = _build_targets()
TARGET_NAMES: tuple[str, ...] = tuple(TARGETS)


def target_for(semantic: str, side: Side) -> str:
    """Target name of a semantic on a side (a one-sided semantic only has BOTH)."""
    return _target_name(SEMANTIC_BY_NAME[semantic], side)


# --- pose vector -------------------------------------------------------------
def _build_pose_names() -> tuple[str, ...]:
    names: list[str] = []
    for s in SEMANTICS:
        names += [f"{s.name}_left", f"{s.name}_right"] if s.sided else [s.name]
    return (*names, "yaw", "pitch", "roll")


POSE_NAMES: tuple[str, ...] = _build_pose_names()
POSE_SIZE = len(POSE_NAMES)  # 20
MORPH_SLOTS = POSE_SIZE - 3  # 17
YAW, PITCH, ROLL = MORPH_SLOTS, MORPH_SLOTS + 1, MORPH_SLOTS + 2  # degrees
POSE_INDEX: dict[str, int] = {name: i for i, name in enumerate(POSE_NAMES)}


def pose_slots(target: str) -> tuple[int, ...]:
    """Pose vector indices a target's weight goes to (both -> left and right slots)."""
    t = TARGETS[target]
    if not SEMANTIC_BY_NAME[t.semantic].sided:
        return (POSE_INDEX[t.semantic],)
    sides = (Side.LEFT, Side.RIGHT) if t.side is Side.BOTH else (t.side,)
    return tuple(POSE_INDEX[f"{t.semantic}_{side.value}"] for side in sides)


# --- source names ------------------------------------------------------------
# MMD's panel byte: 1 eyebrow, 2 eye, 3 mouth; 0 (system) and 4 (other) say nothing.
PANEL_PARTS: dict[int, Part] = {1: Part.EYEBROWS, 2: Part.EYES, 3: Part.MOUTH}

# Source name -> (semantic, side it implies). Written as users type them; keys
# are normalised on load. Side-marked variants (まばたき右, blink_L, 左困る...)
# need no entries: side markers are split off before the lookup.
_SOURCE_NAMES: dict[str, tuple[str, Side]] = {
    **dict.fromkeys(
        ["まばたき", "瞬き", "目閉じ", "閉じ目", "目を閉じる", "blink", "eye close", "eyes closed", "close eyes",
         "eye_close"], ("eye_close", Side.BOTH)),
    # MMD convention: ウィンク２ closes the character's left eye, ウィンク the left eye smiling
    **dict.fromkeys(["ウィンク２", "ウインク２", "wink2", "wink 2"], ("eye_close", Side.LEFT)),
    **dict.fromkeys(["笑い", "笑い目", "にこり目", "smile", "eye smile", "smile eyes", "happy eyes", "eye_smile"],
                    ("eye_smile", Side.BOTH)),
    **dict.fromkeys(["ウィンク", "ウインク", "wink"], ("eye_smile", Side.LEFT)),
    **dict.fromkeys(["困る", "困り", "困り眉", "troubled", "worried", "brow troubled", "brow_troubled"],
                    ("brow_troubled", Side.BOTH)),
    **dict.fromkeys(["怒り", "怒り眉", "angry", "anger", "brow angry", "brow_angry"], ("brow_angry", Side.BOTH)),
    **dict.fromkeys(["上", "眉上", "眉上げ", "up", "brow up", "brows up", "eyebrow up", "brow raise", "brow_raise"],
                    ("brow_raise", Side.BOTH)),
    **dict.fromkeys(["下", "眉下", "眉下げ", "真面目", "down", "brow down", "brows down", "eyebrow down", "serious",
                     "brow lower", "brow_lower"], ("brow_lower", Side.BOTH)),
    **dict.fromkeys(["あ", "a", "mouth a", "mouth_a"], ("mouth_a", Side.BOTH)),
    **dict.fromkeys(["い", "i", "mouth i", "mouth_i"], ("mouth_i", Side.BOTH)),
    **dict.fromkeys(["う", "u", "mouth u", "mouth_u"], ("mouth_u", Side.BOTH)),
    **dict.fromkeys(["え", "e", "mouth e", "mouth_e"], ("mouth_e", Side.BOTH)),
    **dict.fromkeys(["お", "o", "mouth o", "mouth_o"], ("mouth_o", Side.BOTH)),
}
# Names that mean something else off their part's panel (上 = look up, "e" = anything).
_NEEDS_PANEL = {"上", "下", "up", "down", "a", "i", "u", "e", "o"}

# Side markers, tried as suffix then prefix of the normalised name (no separators left).
_SIDE_MARKERS: tuple[tuple[str, Side], ...] = (
    ("左", Side.LEFT), ("右", Side.RIGHT), ("left", Side.LEFT), ("right", Side.RIGHT),
    ("l", Side.LEFT), ("r", Side.RIGHT),
)
_SEPARATORS = re.compile(r"[\s_.\-・]+")


def normalize_name(name: str) -> str:
    """Matching key of a morph name: NFKC, case-folded, katakana as hiragana, no separators."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)
    return _SEPARATORS.sub("", text)


NAME_MAP: dict[str, tuple[str, Side]] = {normalize_name(k): v for k, v in _SOURCE_NAMES.items()}
_AMBIGUOUS = {normalize_name(k) for k in _NEEDS_PANEL}


def _candidates(key: str) -> Iterator[tuple[str, Side | None]]:
    """(base, side marker) readings of a key: the whole key first, then side affixes split off."""
    yield key, None
    for marker, side in _SIDE_MARKERS:
        if len(key) > len(marker):
            if key.endswith(marker):
                yield key[: -len(marker)], side
            if key.startswith(marker):
                yield key[len(marker):], side


class NamedMorph(Protocol):
    """What the mapper needs of a morph (PmxModel morphs qualify)."""

    name: str
    name_en: str
    panel: int


@dataclass(frozen=True)
class MorphMatch:
    """One row of the annotation table."""

    index: int  # source morph index in the model
    name: str
    target: str | None
    part: Part | None
    side: Side | None
    method: str  # "name", "name+side", "name_en", "name_en+side", "panel" or "none"


def _lookup(key: str, panel_part: Part | None) -> tuple[str, Side, bool] | None:
    """(target, side, side marker used) for a normalised key, or None."""
    for base, marker in _candidates(key):
        entry = NAME_MAP.get(base)
        if entry is None:
            continue
        semantic = SEMANTIC_BY_NAME[entry[0]]
        if marker is not None and not semantic.sided:
            continue
        if panel_part is not None and panel_part is not semantic.part:
            continue  # the panel contradicts the name
        if panel_part is None and base in _AMBIGUOUS:
            continue
        side = marker or entry[1]
        return target_for(semantic.name, side), side, marker is not None
    return None


def match_morph(index: int, morph: NamedMorph) -> MorphMatch:
    """Map one source morph to a target by its local name, then its English name, then its panel."""
    panel_part = PANEL_PARTS.get(morph.panel)
    for field, label in ((morph.name, "name"), (morph.name_en, "name_en")):
        found = _lookup(normalize_name(field), panel_part) if field.strip() else None
        if found:
            target, side, by_marker = found
            method = f"{label}+side" if by_marker else label
            return MorphMatch(index, morph.name, target, TARGETS[target].part, side, method)
    return MorphMatch(index, morph.name, None, panel_part, None, "panel" if panel_part else "none")


def map_morphs(morphs: Iterable[NamedMorph]) -> tuple[MorphMatch, ...]:
    """The annotation table of a model's morphs (e.g. `PmxModel.morphs`), one row per morph."""
    return tuple(match_morph(i, m) for i, m in enumerate(morphs))


def available_targets(matches: Iterable[MorphMatch]) -> dict[str, int]:
    """Target -> source morph index; the first source morph wins when several match."""
    found: dict[str, int] = {}
    for m in matches:
        if m.target is not None:
            found.setdefault(m.target, m.index)
    return found

"""Model folders for the render tests: synthetic characters and every kind of bad input."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

from factory.sources.pmx_writer import pmx_bytes, write_pmx
from factory.synthetic.character import build_character, random_character, write_character


def write_good(folder: Path, n: int, seed: int = 0, **kwargs) -> list[Path]:
    """`n` random synthetic characters, each in its own sub-folder."""
    rng = np.random.default_rng(seed)
    return [write_character(random_character(rng, **kwargs), folder / f"good{i}") for i in range(n)]


def _renamed_head_bones(model):
    names = {"首": ("bone_a", "bone a"), "頭": ("bone_b", "bone b")}
    bones = tuple(dataclasses.replace(b, name=names[b.name][0], name_en=names[b.name][1]) if b.name in names else b
                  for b in model.bones)
    return dataclasses.replace(model, bones=bones)


def write_bad(folder: Path) -> dict[str, Path]:
    """One model folder per bad input; name -> .pmx path."""
    character = build_character()
    good = pmx_bytes(character.model)
    raw = {
        "truncated": good[: len(good) // 2],
        "wrong_magic": b"XYZ " + good[4:],
        "version_3": good[:4] + struct.pack("<f", 3.0) + good[8:],
        "zero_byte": b"",
    }
    made = {}
    for name, data in raw.items():
        path = folder / name / f"{name}.pmx"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        made[name] = path
    escaping = dataclasses.replace(character.model, textures=("..\\..\\etc\\passwd",))
    made["texture_escape"] = write_pmx(escaping, _mkdir(folder / "texture_escape") / "texture_escape.pmx")
    made["no_head"] = write_pmx(_renamed_head_bones(character.model), _mkdir(folder / "no_head") / "no_head.pmx")
    no_morphs = dataclasses.replace(character.model, morphs=(), display_frames=())
    made["no_morphs"] = write_character(dataclasses.replace(character, model=no_morphs), folder / "no_morphs",
                                        "no_morphs")
    return made


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# inputs that must end as error rows, and those that render with a warning
ERROR_INPUTS = ("truncated", "wrong_magic", "version_3", "zero_byte", "no_head")
WARNING_INPUTS = {"texture_escape": "rejected: '..' component", "no_morphs": "no target morphs"}

"""`factory export`: committed shards -> the folder layouts other projects' loaders read.

Each layout is one module exposing ``KINDS`` (the sample kinds it reads) and
``write(data, root, options) -> summary``; ``LAYOUTS`` maps the layout name
to that module, imported only when chosen. Reading (:mod:`.source`) and the
output folder's marker (:mod:`.target`) are shared; docs/EXPORT.md describes
every layout.
"""

from __future__ import annotations

LAYOUTS: dict[str, str] = {
    "imagefolder": "factory.export.imagefolder",
    "yolo": "factory.export.yolo",
    "animeceleb": "factory.export.animeceleb",
    "gochiusa": "factory.export.gochiusa",
    "korean-av": "factory.export.korean_av",
}

"""Import ultralytics so that it never reaches the network.

ultralytics checks connectivity at import (``ONLINE``), sends usage events,
auto-installs missing requirements with pip and downloads fonts or weights
on some paths. ``YOLO_OFFLINE`` makes it treat the machine as offline and
``YOLO_AUTOINSTALL=false`` stops pip; both must be set before the first
import. Trainers also pass ``plots=False`` (plotting fetches Arial.ttf) and
``amp=False`` (the AMP check fetches a .pt) and build models from YAML.
"""

from __future__ import annotations

import os
from types import ModuleType

OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "YOLO_VERBOSE": "false"}


def import_ultralytics() -> ModuleType:
    """The ``ultralytics`` module, imported with networking features off."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import ultralytics

    return ultralytics

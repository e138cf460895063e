"""Where the real inputs others made live: ../shared/realdata beside the repo, never copied in.

Tests that use them skip, naming the missing path, when the checkout has no
shared/ folder beside it (a clone elsewhere); CI's checkout has it.
"""

from __future__ import annotations

from pathlib import Path

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
MMD = REALDATA / "mmd"
GENE_DIR = MMD / "gene"
GENE = GENE_DIR / "Gene_light.pmx"
ANIME2D = REALDATA / "anime2d_dev"

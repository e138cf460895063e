"""Input sources: PMX/PMD model files and their textures (pure Python + numpy)."""

"""Render stages: morph targets, pose sampling (pure); the bpy scene lives in scene.py."""

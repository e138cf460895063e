"""Pure stages of the video pipeline: decode, style, shots, audio (no Ray, no bpy)."""

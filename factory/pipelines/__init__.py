"""Ray Data graphs: each pipeline wires sources, actor pools and the shard sink."""

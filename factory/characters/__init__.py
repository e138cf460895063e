"""Characters: face tracks grouped into identities and per-character samples (`factory characters`)."""

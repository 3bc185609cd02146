"""The seam between environments and algorithms: what an observation space becomes (encoders)."""

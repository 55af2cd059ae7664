"""The daily job's stages: dataset loads (bronze, quarantine, silver), gold recompute, run records."""

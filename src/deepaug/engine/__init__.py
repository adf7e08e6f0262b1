"""One resumable training loop's parts: checkpoints, fingerprints, provenance, GPU claim."""

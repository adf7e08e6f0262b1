"""The method: the Deep Augmentation op, layer maps, losses by name, run settings."""

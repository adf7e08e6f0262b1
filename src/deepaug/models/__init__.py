"""Backbones with a Deep Augmentation layer map (``deepaug_layers()``)."""

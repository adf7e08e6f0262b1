"""Vision: images, ResNets with their layer map, SimCLR views, training, linear probe/kNN."""

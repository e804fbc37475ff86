"""Files: model checkpoints, atomic writes, image files and grids; below data, ops, training and cli."""

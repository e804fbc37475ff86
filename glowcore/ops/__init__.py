"""What is done with a model: directions and edits, interpolation, inpainting, photos, video, evaluation."""

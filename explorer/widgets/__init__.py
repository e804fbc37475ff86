"""The explorer's widgets (Qt only; no torch)."""

"""Leaf helpers every layer may use; they import nothing else from glowcore (docs/architecture.md)."""

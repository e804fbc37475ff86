"""The invertible layers of a Glow flow, one per module; they import only glowcore.base."""

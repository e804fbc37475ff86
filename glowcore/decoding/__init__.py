"""Decoding a latent fast and safely: frozen graphs (compiled) and damped re-decoding (stable)."""

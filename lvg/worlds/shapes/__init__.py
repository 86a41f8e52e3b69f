"""Shapes World: coloured shapes on a 3x3 grid (see docs/shapes-world.md)."""

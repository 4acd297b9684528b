"""Rotations, rigid poses and the X-ray detector."""

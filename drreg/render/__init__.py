"""Renderers: Siddon (exact line integrals) and trilinear ray marching."""

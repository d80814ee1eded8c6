"""Fused GPU kernels for the deploy models."""

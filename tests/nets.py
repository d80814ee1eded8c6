"""Models with random weights of realistic size for the engine tests."""

from __future__ import annotations

import zlib

import torch

import vidsr


def perturbed_model(name: str, seed: int | None = None) -> torch.nn.Module:
    """``name`` built untrained, every parameter moved by N(0, 0.05) noise so that biases and
    PReLU slopes leave their initial values; ``seed`` defaults to one derived from the name
    (stable across processes, unlike ``hash``)."""
    torch.manual_seed(zlib.crc32(name.encode()) % 1000 if seed is None else seed)
    model = vidsr.load_model(name, pretrained=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model

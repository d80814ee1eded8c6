"""Shared test configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The GPU engine would time the ECBSR kernel's settings for every new frame shape and write the
# choice under ~/.cache: tests run the defaults; test_kernels turns the autotuner on itself.
os.environ.setdefault("VIDSR_KERNEL_AUTOTUNE", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; skips the test when it is absent."""
    if not (SHARED_DATA / "Set5").is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module: on tiny frames a second one only adds
    contention on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

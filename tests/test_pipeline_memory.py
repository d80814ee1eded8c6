"""Memory stays flat over the length of a video: a long run peaks no higher than a short one.

Each run is a fresh ``python -m vidsr`` process, measured by the kernel (``wait4``'s peak
resident set size). Kept per frame, the long clip's 1200 upscaled 320x240 frames alone would
add over 130 MiB; the bound allows 48 MiB of noise.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from media import make_clip, read_video

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "memory_flat.py"


def peak_rss_mib(args: list[str]) -> float:
    """scripts/memory_flat.py's measurement: a fresh ``python -m vidsr ARGS``, its peak RSS."""
    spec = importlib.util.spec_from_file_location("memory_flat", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    peak, _, status = script.peak_rss_mib(args)
    assert status == 0, f"vidsr exited with {status} (its stderr is above)"
    return peak


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs wait4 (POSIX)")
def test_a_long_run_peaks_no_higher_than_a_short_one(tmp_path):
    peaks = {}
    for frames in (40, 1200):
        src = make_clip(tmp_path / f"{frames}.mp4", width=160, height=120, frames=frames,
                        audio_tracks=1, options={"preset": "ultrafast"})
        dst = tmp_path / f"{frames}-up.mp4"
        peaks[frames] = peak_rss_mib([str(src), "-o", str(dst), "-m", "bicubic-x2",
                                      "--device", "cpu", "--preset", "ultrafast", "-q"])
        assert len(read_video(dst)["pts"]) == frames
    assert peaks[1200] <= peaks[40] + 48, peaks

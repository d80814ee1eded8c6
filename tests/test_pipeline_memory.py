"""Memory stays flat over the length of a video: a long run peaks no higher than a short one.

Each run is a fresh ``python -m vidsr`` process, measured by the kernel (``wait4``'s peak
resident set size). Kept per frame, the long clip's 1200 upscaled 320x240 frames alone would
add over 130 MiB; the bound allows 48 MiB of noise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from media import make_clip, read_video

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mib(args: list[str]) -> float:
    proc = subprocess.Popen([sys.executable, "-m", "vidsr", *args], cwd=REPO,
                            env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return usage.ru_maxrss / 1024


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

"""Peak memory of ``vidsr INPUT -o OUTPUT`` on a short and a long clip of the same picture.

Flat memory means the long run peaks no higher than the short one: the stages are joined by
bounded queues and nothing is kept per frame. Both clips are ``samples/make_sample.py``'s
picture and sound (320x180, 24 fps, stereo AAC), ``--short`` and ``--long`` seconds long. Each
run is a fresh ``python -m vidsr`` process; its peak resident set size is the kernel's
(``wait4``'s ``ru_maxrss``).

    python scripts/memory_flat.py [--short 10] [--long 600] [--model ecbsr-x2] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib(args: list[str]) -> tuple[float, float, int]:
    """Run ``python -m vidsr ARGS`` in a fresh process: (peak RSS MiB, seconds, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vidsr", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, proc.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--short", type=int, default=10, help="seconds (default 10)")
    p.add_argument("--long", type=int, default=600, help="seconds (default 600)")
    p.add_argument("--model", default="ecbsr-x2")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    spec = importlib.util.spec_from_file_location("make_sample",
                                                  ROOT / "samples" / "make_sample.py")
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'clip':>8}  {'frames':>6}  {'peak RSS MiB':>12}  {'wall s':>7}")
        for seconds in (args.short, args.long):
            src = sample.make(Path(tmp) / f"{seconds}s.mp4", seconds, preset="veryfast")
            peak, wall, rc = peak_rss_mib([str(src), "-o", str(Path(tmp) / f"{seconds}s-up.mp4"),
                                           "--model", args.model, "--device", args.device,
                                           "-q"])
            if rc != 0:
                print(f"vidsr exited with {rc} on the {seconds} s clip", file=sys.stderr)
                return 1
            print(f"{seconds:>7}s  {seconds * sample.FPS:>6}  {peak:>12.1f}  {wall:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Quality cost of the CPU engine's bf16 ECBSR path against its fp32 path.

Each Set5/Set14 image is degraded as in the evaluation protocol, its LR luma rounded to uint8
(what a video decoder hands over), upscaled by the CPU engine in fp32 and in bf16, and both are
scored against the HR luma (Y PSNR, ``scale`` pixels shaved). Prints the mean PSNR of each and
the worst image's share of pixels within one code value.

    python scripts/bf16_quality.py [--data ../shared/data] [--models ecbsr-m4c16-x2 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vidsr.engine import Engine
from vidsr.engine.cpu import bf16_supported
from vidsr.evaluation import load_pairs
from vidsr.metrics import psnr
from vidsr.registry import parse_name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    ap.add_argument("--models", nargs="+",
                    default=["ecbsr-m4c16-x2", "ecbsr-m4c16-x3", "ecbsr-m4c16-x4",
                             "ecbsr-m4c8-x2"])
    args = ap.parse_args()
    if not bf16_supported():
        raise SystemExit("this CPU has no native bf16: the engine runs fp32 here")
    print("model            set    fp32 dB  bf16 dB  delta   worst within-1")
    for name in args.models:
        s = parse_name(name).scale
        fp32 = Engine(name, device="cpu", fp16=False)
        bf16 = Engine(name, device="cpu", fp16=True)
        for ds in ("Set5", "Set14"):
            a, b, w1 = [], [], []
            for p in load_pairs(Path(args.data) / ds, s):
                lr = np.clip(np.floor(p.lr_y + 0.5), 0, 255).astype(np.uint8)
                o32 = fp32.upscale_luma(lr).astype(np.float64)
                o16 = bf16.upscale_luma(lr).astype(np.float64)
                a.append(psnr(o32, p.hr_y, shave=s))
                b.append(psnr(o16, p.hr_y, shave=s))
                w1.append(float(np.mean(np.abs(o32 - o16) <= 1)))
            print(f"{name:<16} {ds:<6} {np.mean(a):7.3f}  {np.mean(b):7.3f}  "
                  f"{np.mean(b) - np.mean(a):+.3f}  {min(w1):.5f}")


if __name__ == "__main__":
    main()

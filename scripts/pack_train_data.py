"""Pack the training (and validation) images for a GPU machine that has no ../shared.

    python scripts/pack_train_data.py [--data DIR ...] [--val DIR ...] [--out runs/pack]
                                      [--rescale F ...] [--exact-lr] [--channels]

writes OUT/train.pack.npz (HR Y once plus the LR Y of x2, x3 and x4, lossless PNG; `vidsr train
--data OUT/train.pack.npz` reads it) and copies the validation folders to OUT/val/. Carry OUT to
the device (scripts/gpu_check.sh train). With --rescale the pack also holds each image
downscaled by those factors, for recipes with the same `rescale`; with --exact-lr its LR planes
are unrounded (16-bit), for recipes with `exact_lr = true`; with --channels it holds each image's
R/G/B gray images too, for recipes with `channels = true`. Nothing here is committed:
OUT sits under runs/.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from vidsr.train.data import pack_planes

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=[SHARED / "train" / "T91",
                                                  SHARED / "train" / "BSD200"])
    ap.add_argument("--val", nargs="+", default=[SHARED / "Set5", SHARED / "Set14"])
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    ap.add_argument("--out", type=Path, default=Path("runs/pack"))
    ap.add_argument("--rescale", nargs="*", type=float, default=[],
                    help="also pack each image downscaled by these factors (a recipe's rescale)")
    ap.add_argument("--exact-lr", action="store_true",
                    help="unrounded LR planes (16-bit), for recipes with exact_lr = true")
    ap.add_argument("--channels", action="store_true",
                    help="also pack each image's R/G/B gray images, for recipes with "
                         "channels = true (about 4x the size)")
    args = ap.parse_args()
    pack = pack_planes(args.data, args.scales, args.out / "train.pack.npz", args.rescale,
                       args.exact_lr, args.channels)
    print(f"{pack}: {pack.stat().st_size / 2**20:.1f} MiB")
    for v in map(Path, args.val):
        dst = args.out / "val" / v.name
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(v, dst)
        print(f"{dst}: {sum(f.stat().st_size for f in dst.iterdir()) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

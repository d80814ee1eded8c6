"""``vidsr gui [INPUT | --webcam N]``: the side-by-side model comparison window."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from vidsr_gui.app import run as run_gui  # Qt is imported only when the GUI starts

    return run_gui(args)


def register(sub: argparse._SubParsersAction) -> None:
    from vidsr_gui.app import add_arguments

    p = sub.add_parser("gui", help="compare models side by side on a video or a camera",
                       description="Compare super-resolution models side by side, live. "
                       "'--screenshot out.png --at 3' renders offscreen and exits.")
    add_arguments(p)
    p.set_defaults(func=run)

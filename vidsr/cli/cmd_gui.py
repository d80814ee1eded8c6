"""``vidsr gui [INPUT | --webcam N]``: the side-by-side model comparison window."""

from __future__ import annotations

import argparse

from ..errors import InputError


def run(args: argparse.Namespace) -> int:
    from vidsr_gui.app import run as run_gui  # Qt is imported only when the GUI starts

    return run_gui(args)


def _missing(reason: str):  # noqa: ANN202
    def fail(args: argparse.Namespace) -> int:
        raise InputError(f"the GUI is not installed ({reason}); install vidsr with "
                         "'pip install -e .' (the vidsr_gui package lives in gui/)")
    return fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="compare models side by side on a video or a camera",
                       description="Compare super-resolution models side by side, live. "
                       "'--screenshot out.png --at 3' renders offscreen and exits.")
    try:
        from vidsr_gui.app import add_arguments
    except ModuleNotFoundError as exc:
        # vidsr used from a checkout on PYTHONPATH (no vidsr_gui): every other command works.
        if exc.name != "vidsr_gui" and not (exc.name or "").startswith("vidsr_gui."):
            raise
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=_missing(str(exc)))
        return
    add_arguments(p)
    p.set_defaults(func=run)

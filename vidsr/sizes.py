"""Frame sizes as users type them: ``1280x720`` or a name such as ``720p``."""

from __future__ import annotations

from .errors import InputError

NAMED = {"360p": (640, 360), "480p": (640, 480), "540p": (960, 540), "720p": (1280, 720),
         "1080p": (1920, 1080), "2160p": (3840, 2160), "4k": (3840, 2160)}


def parse_size(text: str, *, minimum: int = 2, what: str = "frame size",
               maximum: int | None = None) -> tuple[int, int]:
    """``"1280x720"`` (or ``"720p"``) -> ``(1280, 720)``; ``InputError`` for anything else or
    for a side under ``minimum`` (or over ``maximum``)."""
    key = str(text).strip().lower()
    if key in NAMED:
        return NAMED[key]
    try:
        w, h = (int(v) for v in key.split("x"))
    except ValueError:
        raise InputError(f"{what} must look like WxH (e.g. 1280x720), got {text!r}") from None
    if w < minimum or h < minimum:
        raise InputError(f"{what} must be at least {minimum}x{minimum}, got {text!r}")
    if maximum is not None and max(w, h) > maximum:
        raise InputError(f"{what} must be at most {maximum} pixels a side, got {text!r}")
    return w, h

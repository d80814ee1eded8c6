"""Checks on an output path before any work is done, shared by every command that writes a file:
the same one-line refusal everywhere for a folder given as the file, a missing or unwritable
folder, the input itself, or an existing file without ``--overwrite``."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError


def check_output(dst: str | Path, *, overwrite: bool = False, src: str | Path | None = None,
                 what: str = "") -> None:
    """Raise ``OutputError`` unless ``dst`` can be written. ``what`` names the option in the
    messages (``--json``); ``src``, when given, must not be ``dst``."""
    dst = Path(dst)
    label = f"{what} " if what else ""
    if dst.is_dir():
        raise OutputError(f"{label}{dst} is a directory; give an output file name")
    if not dst.resolve().parent.is_dir():
        raise OutputError(f"{label}output folder does not exist: {dst.parent}")
    if src is not None and dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        raise OutputError(f"{dst} is the input file; choose another output name")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst} exists (use --overwrite to replace it)")
    if not os.access(dst.resolve().parent, os.W_OK):
        raise OutputError(f"cannot write to {dst.parent}: permission denied (choose an output "
                          "path in a folder you can write to)")

"""The command line: a thin shell over the library."""

from __future__ import annotations

from pathlib import Path

from ..errors import OutputError


def check_json_output(path: str | Path | None) -> None:
    """Refuse a ``--json FILE`` whose folder does not exist before any work is done."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise OutputError(f"folder for --json does not exist: {Path(path).parent}")

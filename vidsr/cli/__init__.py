"""The command line: a thin shell over the library."""

from __future__ import annotations

from pathlib import Path

from ..paths import check_output


def check_json_output(path: str | Path | None) -> None:
    """Refuse a ``--json FILE`` that cannot be written before any work is done (an existing
    file is replaced)."""
    if path is not None:
        check_output(path, overwrite=True, what="--json")

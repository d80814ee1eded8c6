"""Checks on an output path before any work is done, shared by every command that writes a file:
the same one-line refusal everywhere for a folder given as the file, a missing or unwritable
folder, the input itself, or an existing file without ``--overwrite``."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TextIO

from .errors import OutputError


def _suffix(p: Path) -> str:
    return p.suffix or (p.name if p.name.startswith(".") else "")


def extension(path: str | Path) -> str:
    """``path``'s extension as the writers read it, lower-case: ``.png`` alone (``d/.png``)
    counts as one."""
    return _suffix(Path(path)).lower()


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder if str(folder) else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def partial_path(dst: Path) -> Path:
    """The temporary file a run writes before renaming it to ``dst``, with ``dst``'s extension
    (the writers choose the format by it; ``.png`` alone counts as one). A file by that name is
    taken for an earlier run's leftover and replaced. Where ``dst``'s name is near the file
    system's limit (255 bytes), its stem is cut and a digest of the whole name added."""
    dst = Path(dst)
    suffix = _suffix(dst)
    stem = dst.name[:len(dst.name) - len(suffix)]
    name = f".{stem}.vidsr-partial{suffix}"
    room = _name_max(dst.parent)
    if len(os.fsencode(name)) > room:
        digest = hashlib.sha256(os.fsencode(dst.name)).hexdigest()[:12]
        tail = f"~{digest}.vidsr-partial{suffix}"
        keep = os.fsencode(stem)[:max(0, room - 1 - len(os.fsencode(tail)))]
        name = f".{keep.decode(errors='ignore')}{tail}"  # a character cut in two is dropped
    return dst.with_name(name)


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same path, or (both existing) the same inode."""
    return a.absolute() == b.absolute() or (a.exists() and b.exists() and os.path.samefile(a, b))


def check_output(dst: str | Path, *, overwrite: bool = False,
                 src: str | Path | Sequence[str | Path] | None = None, what: str = "") -> None:
    """Raise ``OutputError`` unless ``dst`` can be written. ``what`` names the option in the
    messages (``--json``); ``src`` (one path or several: the inputs, another output), when
    given, must not be ``dst``.

    The folder checked is ``dst``'s own, not a symlink target's: a run writes its partial file
    beside ``dst`` and renames it over ``dst`` (a link is replaced, not followed)."""
    dst = Path(dst)
    label = f"{what} " if what else ""
    try:
        _check_output(dst, label, overwrite, src, what)
    except OutputError:  # an OSError too
        raise
    except OSError as exc:  # a name too long for the file system, a loop of links, ...
        raise OutputError(f"{label}cannot write {dst}: {exc.strerror or exc}") from None


def _check_output(dst: Path, label: str, overwrite: bool,
                  src: str | Path | Sequence[str | Path] | None, what: str) -> None:
    if dst.is_dir():
        raise OutputError(f"{label}{dst} is a directory; give an output file name")
    if not dst.parent.is_dir():
        raise OutputError(f"{label}output folder does not exist: {dst.parent}")
    others = [] if src is None else [src] if isinstance(src, (str, Path)) else list(src)
    tmp = partial_path(dst)
    for other in map(Path, others):
        if _same_file(dst, other):
            raise OutputError(f"{label}{dst} is also {other}; choose another output name"
                              if what else f"{dst} is the input file; choose another "
                              "output name")
        if _same_file(tmp, other):
            # the run would write its partial file over the input (then remove or rename it)
            raise OutputError(f"{other} has the name of {dst.name}'s temporary file "
                              f"({tmp.name}); rename it or choose another output name")
    if dst.exists() and not overwrite:
        raise OutputError(f"{label}{dst} exists (use --overwrite to replace it)")
    if not os.access(dst.parent, os.W_OK):
        raise OutputError(f"{label}cannot write to {dst.parent}: permission denied (choose an "
                          "output path in a folder you can write to)")


STDOUT = "-"
_json_streams: list[TextIO] = []


def is_stdout(path: str | Path | None) -> bool:
    """Whether an output option names standard output (``--json -``)."""
    return isinstance(path, (str, Path)) and str(path) == STDOUT


@contextmanager
def json_on_stdout() -> Iterator[None]:
    """Keep standard output for what ``write_json("-", ...)`` writes: anything else printed
    meanwhile (tables, notes) goes to stderr, so ``vidsr eval ... --json - | jq`` reads JSON
    alone."""
    _json_streams.append(sys.stdout)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _json_streams.pop()


def write_json(path: str | Path, data: object, **dumps: object) -> None:
    """Write ``data`` as indented JSON to ``path`` through a temporary file beside it, renamed
    into place: a full disk or a file-size limit leaves the old file, if any, whole (one
    ``OutputError`` line, not a traceback and half a file). A link is written through and a
    device or pipe (``/dev/stdout``) written to, as a plain write would; ``-`` is standard
    output (the one ``json_on_stdout`` kept, where it is in force)."""
    text = json.dumps(data, indent=2, **dumps) + "\n"
    if is_stdout(path):
        stream = _json_streams[-1] if _json_streams else sys.stdout
        stream.write(text)
        stream.flush()
        return
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # through a link to its target, or into a device or pipe (/dev/stdout), as asked
        try:
            path.write_text(text)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    tmp = partial_path(path)
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)

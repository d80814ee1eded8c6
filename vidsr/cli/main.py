"""``vidsr``: the command-line entry point.

``vidsr INPUT -o OUTPUT`` upscales a video (the ``upscale`` subcommand, implied when the first
argument is not a subcommand); ``vidsr models|image|eval|train|bench|gui|webcam`` do the rest.
Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func(args) -> int`` runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import importlib
import io
import logging
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import InputError, UsageError, VidsrError
from ..paths import is_stdout, json_on_stdout
from ..signals import STOP_SIGNALS
from . import OneLineParser

# Subcommand name -> module under vidsr.cli. The first is the default command.
COMMANDS = {
    "upscale": "cmd_upscale",
    "image": "cmd_image",
    "models": "cmd_models",
    "eval": "cmd_eval",
    "train": "cmd_train",
    "bench": "cmd_bench",
    "gui": "cmd_gui",
    "webcam": "cmd_webcam",
    "export": "cmd_export",
}


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"vidsr: warning: {message}\n"


class _LowerLevelFormatter(logging.Formatter):
    """``vidsr: warning: ...``, as ``vidsr: error: ...`` and Python's warnings read."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="vidsr",
        description="Real-time video super-resolution. 'vidsr INPUT -o OUTPUT' upscales a video.",
    )
    parser.add_argument("--version", action="version", version=f"vidsr {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                raise
            continue
        mod.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C's ``KeyboardInterrupt`` would be, so that a run
    stops the same way: no partial output left, one line, status 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


_TOP_LEVEL = {"-h", "--help", "--version"}


def _default_command_at(args: list[str], commands: set[str]) -> int | None:
    """Where ``upscale`` goes in a command line that names no subcommand: before the first
    argument that is neither ``--debug`` nor a top-level option, whether it is the input or an
    option of the upscale command (``vidsr -m esr-max-x2 in.mp4``); None where a subcommand or
    a top-level option comes first, or nothing does."""
    for i, arg in enumerate(args):
        if arg == "--debug":
            continue
        top = arg in _TOP_LEVEL or (len(arg) > 2 and arg.startswith("--") and any(
            o.startswith(arg) for o in _TOP_LEVEL if o.startswith("--")))  # --vers, --he
        return None if arg in commands or top else i
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 1 error, 2 usage, 130 interrupted,
    143 / 129 terminated by SIGTERM / SIGHUP, 141 output pipe closed)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        return _main(args_list, debug)
    except VidsrError as exc:
        if debug:
            raise
        print(f"vidsr: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C, or a Terminated signal, at any point
        if debug:
            raise
        if isinstance(exc, Terminated):
            print(f"vidsr: terminated ({signal.Signals(exc.signum).name})", file=sys.stderr)
            return 128 + exc.signum
        print("vidsr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``vidsr models | head -1``): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so the interpreter's final flush cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return 141  # 128 + SIGPIPE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT) or debug:
            raise
        # stdout or a file on a full or failing disk (vidsr models > /dev/full), past a quota
        # or a file-size limit (ulimit -f)
        print(f"vidsr: error: cannot write: {exc.strerror}", file=sys.stderr)
        return 1


# Arguments that name a file or folder, and how a message calls them
_PATH_ARGS = {"input": "the input", "output": "-o/--output", "data": "--data", "val": "--val",
              "out": "--out", "json": "--json", "recipe": "--recipe", "resume": "--resume",
              "ship": "--ship"}


def _refuse_empty_names(args: argparse.Namespace) -> None:
    """An empty string where a path goes (``vidsr "$IN"`` with IN unset) is refused: it read
    as the current folder (". is a directory", "no images in .") or as no -o at all."""
    for dest, label in _PATH_ARGS.items():
        value = getattr(args, dest, None)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str | Path) and str(v) == "" for v in values):
            raise InputError(f"{label}: an empty name (not a file or folder)")


def _main(args_list: list[str], debug: bool) -> int:
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
    # --debug is read above wherever it stands; the subcommands' parsers do not know it
    args_list = (["--debug"] if debug else []) + [a for a in args_list if a != "--debug"]
    at = _default_command_at(args_list, names) if "upscale" in names else None
    if at is not None:
        first = args_list[at]
        close = difflib.get_close_matches(first, sorted(names), n=1, cutoff=0.7)
        if close and not first.startswith("-") and not Path(first).exists() \
                and not Path(first).suffix:
            raise InputError(f"no such command or file: {first} (did you mean "
                             f"'vidsr {close[0]}'?)")
        args_list = [*args_list[:at], "upscale", *args_list[at:]]
    args = parser.parse_args(args_list)
    handler = logging.StreamHandler()
    handler.setFormatter(_LowerLevelFormatter("vidsr: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])
    warnings.formatwarning = _format_warning
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _refuse_empty_names(args)
    try:
        if is_stdout(getattr(args, "json", None)):  # --json -: stdout holds the JSON alone
            with json_on_stdout():
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except UsageError as exc:  # as the parser's own usage errors read
        if debug:
            raise
        prog = f"vidsr {args.command}" if getattr(args, "command", None) else "vidsr"
        print(f"{prog}: error: {exc} (see '{prog} --help')", file=sys.stderr)
        return 2


def run() -> None:
    """The ``vidsr`` console script and ``python -m vidsr``: ``main()``, then exit without the
    interpreter's teardown. By then every output is closed and renamed into place, or removed;
    what is left is unloading modules, which takes about 0.4 s once torch is imported (``python
    -c "import torch"`` on the 2-core development VM) and which Ctrl-C would wait for too."""
    for signum in STOP_SIGNALS:  # Ctrl-C is Python's own KeyboardInterrupt already
        if signum != signal.SIGINT and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _raise_terminated)
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()

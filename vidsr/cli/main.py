"""``vidsr``: the command-line entry point.

``vidsr INPUT -o OUTPUT`` upscales a video (the ``upscale`` subcommand, implied when the first
argument is not a subcommand); ``vidsr models|image|eval|train|bench|gui|webcam`` do the rest.
Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func(args) -> int`` runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..errors import VidsrError

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
}


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"vidsr: warning: {message}\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 1 error, 2 usage, 130 interrupted,
    141 output pipe closed)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
    first = next((a for a in args_list if a != "--debug"), None)
    if first is not None and first not in names and not first.startswith("-") \
            and "upscale" in names:
        args_list.insert(args_list.index(first), "upscale")
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="vidsr: %(levelname)s: %(message)s")
    warnings.formatwarning = _format_warning
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VidsrError as exc:
        if debug:
            raise
        print(f"vidsr: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
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


def run() -> None:
    """The ``vidsr`` console script and ``python -m vidsr``: ``main()``, then exit without the
    interpreter's teardown. By then every output is closed and renamed into place, or removed;
    what is left is unloading modules, which takes about 0.4 s once torch is imported (``python
    -c "import torch"`` on the 2-core development VM) and which Ctrl-C would wait for too."""
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()

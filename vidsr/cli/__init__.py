"""The command line: a thin shell over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..paths import check_output, is_stdout


def check_trained(name: str) -> None:
    """Refuse a registry model that has no shipped weights: a randomly initialised network's
    output is noise (the library warns and goes on; the GUI shows such a pane's cost)."""
    from ..api import is_weights_path, resolve_spec
    from ..errors import ModelNotFoundError, WeightsError
    from ..weights import is_untrained

    if is_weights_path(name):
        return
    try:
        spec = resolve_spec(name)
    except ModelNotFoundError:  # the command says so where it loads the model, in its order
        return
    if is_untrained(spec):  # as vidsr export and the GUI's panes decide it
        raise WeightsError(f"no trained weights are shipped for {spec.name}: its output would "
                           "be noise ('vidsr models' lists the trained ones; --model also takes "
                           "a weights file from 'vidsr train')")


def check_json_output(path: str | Path | None, *, avoid: Sequence[str | Path] = ()) -> None:
    """Refuse a ``--json FILE`` that cannot be written before any work is done (an existing
    file is replaced, but never one of ``avoid``: the command's inputs and outputs; ``-`` is
    standard output)."""
    if path is not None and not is_stdout(path):
        check_output(path, overwrite=True, src=[p for p in avoid if p], what="--json")


def split_list(values: Sequence[str] | str | None) -> list[str] | None:
    """A list option's items, given space-separated (``--models a b``), comma-separated
    (``--models a,b``) or both; None when the option was not given."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [item.strip() for value in values  # a file whose name holds a comma stays whole
            for item in ([value] if Path(value).is_file() else value.split(","))
            if item.strip()]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, as vidsr's other errors are (the
    stock parser prints its whole usage block first); exit status 2."""

    _args: list[str] = []

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - as the base
        self._args = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):  # noqa: ANN201 - NoReturn in the base class
        unknown = self._unknown_options()
        if unknown and message.startswith("the following arguments are required"):
            # argparse checks what is missing before what it does not know: "vidsr --bogus"
            # said the input was required, not that there is no --bogus
            message = f"unrecognized arguments: {' '.join(unknown)}"
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def _unknown_options(self) -> list[str]:
        """The option-like arguments of the last parse that no option of this parser takes
        (as written or abbreviated, ``--name=value`` and ``-xVALUE`` included)."""
        known = self._option_string_actions
        unknown = []
        for arg in self._args:
            if arg == "--":
                break
            if not arg.startswith("-") or arg == "-" or arg[1:2].isdigit():
                continue
            name = arg.split("=", 1)[0]
            if name in known or (not arg.startswith("--") and arg[:2] in known) or (
                    arg.startswith("--") and any(o.startswith(name) for o in known)):
                continue
            unknown.append(arg)
        return unknown

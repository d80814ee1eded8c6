"""The error hierarchy. The library raises these; only the CLI turns them into one stderr line."""

from __future__ import annotations


class VidsrError(Exception):
    """Base class of every error vidsr raises on purpose."""


class ModelNotFoundError(VidsrError, KeyError):
    """A model name (or weights path) that does not resolve to a model."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class WeightsError(VidsrError, ValueError):
    """A weights file that is missing, corrupt, of the wrong architecture or fails its sha256."""


class InputError(VidsrError, ValueError):
    """Bad user input: a missing file, a file that is not media, an unsupported format."""


class UsageError(InputError):
    """Options that do not go together (one mode's option given to another): the command
    line shows it as a usage error, ``vidsr COMMAND: error: ...``, status 2."""


class OutputError(VidsrError, OSError):
    """The output cannot be written: exists without --overwrite, unwritable folder."""


class DataError(VidsrError, ValueError):
    """A dataset folder that is missing, empty or holds unreadable images."""


class Cancelled(VidsrError):
    """A long-running job was cancelled (Ctrl-C, the GUI's cancel button)."""

"""Errors a user can act on: each renders as one line naming the file or key at fault."""


class LeukoscopeError(Exception):
    """Base class: the CLI prints `error: <message>` and exits with code 2, no traceback."""


class DataError(LeukoscopeError):
    """A dataset path, layout or manifest the tool cannot use."""


class ImageError(LeukoscopeError):
    """One image file that cannot be read; carries its path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ConfigError(LeukoscopeError):
    """A config key, type or value that is wrong; the message names the key."""


class OutputError(LeukoscopeError):
    """An output path that cannot be written as asked (a folder where a file is wanted, or the reverse)."""

"""The errors a user can cause. The command line prints their message on one line and exits with 2."""


class CktatError(Exception):
    """Base class: bad input that deserves one clear line, not a traceback."""


class ConfigError(CktatError, ValueError):
    """A configuration field has a value outside what is allowed."""

    def __init__(self, field: str, allowed: str, got=None):
        self.field = field
        got_txt = "" if got is None else f" (got {got!r})"
        super().__init__(f"{field}: {allowed}{got_txt}")


class DataError(CktatError):
    """A dataset is missing or malformed."""


class CheckpointError(CktatError):
    """A checkpoint is missing, corrupt, or does not fit the model."""

"""Errors caused by the user's input: entry scripts print the one-line message and exit with code 2."""


class UserError(Exception):
    """A mistake in flags, paths or data that the user can fix; the message says what to do."""


class ConfigError(UserError):
    """A bad flag value or a flag that conflicts with a saved run configuration."""


class DatasetError(UserError):
    """A dataset folder or file that cannot be used as given."""


class StorageError(UserError):
    """A file or folder could not be written (disk full, read-only folder): nothing the program can fix; the
    message names the file and says what was kept."""


class TrainingDiverged(Exception):
    """A loss became NaN or Inf; the last good checkpoint is left untouched."""


class Interrupted(Exception):
    """Training stopped by SIGINT / SIGTERM after writing a checkpoint; exit code 128 + the signal number."""

    EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}

    def __init__(self, signal_name, message):
        super().__init__(message)
        self.signal_name = signal_name
        self.exit_code = self.EXIT_CODES.get(signal_name, 1)

"""Errors caused by the user's input: entry scripts print the one-line message and exit with code 2."""


class UserError(Exception):
    """A mistake in flags, paths or data that the user can fix; the message says what to do."""


class ConfigError(UserError):
    """A bad flag value or a flag that conflicts with a saved run configuration."""


class DatasetError(UserError):
    """A dataset folder or file that cannot be used as given."""


class TrainingDiverged(Exception):
    """A loss became NaN or Inf; the last good checkpoint is left untouched."""

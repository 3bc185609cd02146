"""The one exception type that the command line reports as a single line, without a traceback."""


class DrlabError(Exception):
    """Bad input from a person (unknown env, invalid hyperparameter, corrupt checkpoint, ...)."""

"""The failures the command line reports as one line, without a traceback, and their exit statuses.

0 success; 1 a sweep finished with failed points; 2 bad input (:class:`DrlabError`); 3 a run
diverged (:class:`Diverged`); 4 a file could not be written (an ``OSError``: disk full, no
permission, read-only filesystem, a vanished directory); 130 interrupted (Ctrl-C, SIGTERM).
"""

import errno
import os
from contextlib import contextmanager

EXIT_SWEEP_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_WRITE_FAILED = 4
EXIT_INTERRUPTED = 130


class DrlabError(Exception):
    """Bad input from a person (unknown env, invalid hyperparameter, corrupt checkpoint, ...)."""


class Diverged(Exception):
    """Training produced a non-finite loss, gradient norm or weight; the message says which, at
    which step, and what was kept."""


@contextmanager
def writing(path, default_reason: str = "the write failed"):
    """Re-raise an OSError from writing ``path`` as one that names ``path`` (a plain ``write`` or
    ``fsync`` error names no file) and always has an errno and a reason."""
    try:
        yield
    except OSError as err:
        raise OSError(err.errno or errno.EIO, err.strerror or default_reason, os.fspath(path)) from None


def write_failure(err: OSError) -> str:
    """One line for a failed write: the file and the operating system's reason."""
    reason = err.strerror or str(err)
    return f"cannot write {os.fsdecode(err.filename)}: {reason}" if err.filename else f"a write failed: {reason}"

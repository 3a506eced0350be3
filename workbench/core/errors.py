"""Errors a user can cause, each carrying a message written for that user.

Every error the core raises on purpose derives from :class:`WorkbenchError`; the command line
prints its message and exits with status 2, the app shows it where the user is looking.
"""

import traceback


class WorkbenchError(Exception):
    """Base of every error caused by user input (a file, a setting, a missing dataset)."""


class ArchitectureError(WorkbenchError):
    """An architecture document is malformed, or its layers do not fit together."""


class DatasetError(WorkbenchError):
    """A dataset is unknown, cannot be found, or its files are damaged."""


class ConfigError(WorkbenchError):
    """A training setting is unknown or out of range."""


class RunError(WorkbenchError):
    """A run folder cannot be written or read."""


class ExportError(WorkbenchError):
    """A trained network cannot be exported, its export could not be written, or it failed its check."""


class TrainingError(WorkbenchError):
    """A run cannot go on: the GPU ran out of memory, or another process of a multi-process run failed."""


def describe_failure(error: BaseException, *, batch_size: int | None = None, brief: bool = False) -> str:
    """The sentence a user reads when background work (a run, an export, a load) fails with ``error``.

    A :class:`WorkbenchError` already carries one; running out of GPU memory gets advice (naming the run's
    ``batch_size`` where it is given); anything else is unexpected and gets its type, message and the last frames
    of its traceback, to report. ``brief`` keeps only the first line of an unexpected error's message and no
    traceback, for a one-line record (a run folder's run.json).
    """
    import torch

    if isinstance(error, WorkbenchError):
        return str(error)
    if isinstance(error, torch.cuda.OutOfMemoryError):
        this_run = f" (this run's is {batch_size})" if batch_size is not None else ""
        return f"The GPU ran out of memory: try a smaller batch size{this_run} or a smaller network."
    if brief:
        lines = str(error).strip().splitlines()
        return f"The run failed unexpectedly: {type(error).__name__}: {lines[0] if lines else type(error).__name__}"
    trace = "".join(traceback.format_exception(error, limit=-4))
    return f"The run failed unexpectedly: {type(error).__name__}: {error}\n\n{trace}"

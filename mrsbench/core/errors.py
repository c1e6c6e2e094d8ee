"""Exceptions with one-line, user-facing messages.

Every error a user can cause (bad file, bad option) is raised as a subclass of
:class:`MRSBenchError`; the CLI prints ``str(err)`` on one line and exits with status 2.
"""
from __future__ import annotations

from pathlib import Path


class MRSBenchError(Exception):
    """Base class for errors that are reported to the user without a traceback."""


class InputError(MRSBenchError, ValueError):
    """Bad input data. The message names the source (file or object) and the problem."""

    def __init__(self, source: str | Path | None, problem: str):
        self.source = str(source) if source is not None else None
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)

    def __reduce__(self):   # picklable (raised in a worker process, re-raised in the caller)
        return type(self), (self.source, self.problem)


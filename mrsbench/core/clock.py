"""When the command line started: a run's reported wall time then includes the start-up a user waits for
(imports, reading arguments), not only the harness's stages. Taken once by the first run of the process."""
from __future__ import annotations

_START: list = [None]


def start(t: float) -> None:
    _START[0] = t


def take() -> float | None:
    """The command line's start (time.perf_counter), once; None afterwards or outside the command line."""
    t, _START[0] = _START[0], None
    return t

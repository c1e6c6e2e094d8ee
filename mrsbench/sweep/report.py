"""A sweep's outcome: each cell's status, node and place on the timeline (:class:`SweepReport`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mrsbench.core.errors import MRSBenchError
from mrsbench.sweep.spec import Cell

@dataclass
class CellOutcome:
    cell: Cell
    status: str                  # "done", "skipped", "failed"
    path: str | None = None
    error: str | None = None
    wall_s: float | None = None
    node: str | None = None      # the Ray node that ran it ("local" for the local backend)
    start_s: float | None = None  # seconds from the sweep's start (its timeline)
    end_s: float | None = None


@dataclass
class SweepReport:
    backend: str
    outcomes: list[CellOutcome]
    wall_s: float
    boards: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    shared_s: dict = field(default_factory=dict)
    shared_timeline: dict = field(default_factory=dict)   # group -> {node, start_s, end_s}

    def timeline(self) -> dict:
        """Where the time went: per node its cells and busy seconds, each group's shared work, the first cell's start
        and the tail (last cell's end minus the next-to-last node's last end: one node working alone)."""
        ran = [o for o in self.outcomes if o.status == "done" and o.node is not None and o.end_s is not None]
        nodes: dict = {}
        for o in ran:
            n = nodes.setdefault(o.node, {"cells": 0, "busy_s": 0.0, "last_end_s": 0.0})
            n["cells"] += 1
            n["busy_s"] = round(n["busy_s"] + (o.end_s - o.start_s), 1)
            n["last_end_s"] = max(n["last_end_s"], o.end_s)
        ends = sorted(n["last_end_s"] for n in nodes.values())
        return {"nodes": nodes, "shared": self.shared_timeline,
                "first_cell_start_s": min((o.start_s for o in ran), default=None),
                "last_cell_end_s": ends[-1] if ends else None,
                "tail_s": round(ends[-1] - ends[-2], 1) if len(ends) > 1 else None}

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def counts(self) -> dict:
        c = {"done": 0, "skipped": 0, "failed": 0}
        for o in self.outcomes:
            c[o.status] += 1
        return c

    def to_dict(self) -> dict:
        return {"backend": self.backend, "wall_s": round(self.wall_s, 3), "counts": self.counts(),
                "cells": [dict(asdict(o.cell), status=o.status, path=o.path, error=o.error, wall_s=o.wall_s,
                               node=o.node, start_s=o.start_s, end_s=o.end_s)
                          for o in self.outcomes], "boards": self.boards, "tracking_uri": self.tracking_uri,
                "shared_work_s": self.shared_s, "timeline": self.timeline()}

    def text(self) -> str:
        c = self.counts()
        hours = self.wall_s / 3600
        rate = f", {c['done'] / hours:.0f} cells/hour" if c["done"] and hours > 0 else ""
        lines = [f"sweep ({self.backend}): {c['done']} computed, {c['skipped']} already done, {c['failed']} failed "
                 f"in {self.wall_s:.0f} s{rate}"]
        for o in self.outcomes:
            if o.status == "done":
                lines.append(f"  done   {o.cell.label()}: {o.wall_s:.0f} s -> {o.path}")
        for k, v in self.shared_s.items():
            lines.append(f"  shared work {k}: {v:.0f} s (once for all its models)")
        tl = self.timeline()
        if len(tl["nodes"]) > 1 or any(n != "local" for n in tl["nodes"]):
            lines.append("  nodes: " + "; ".join(f"{n} {v['cells']} cells, busy {v['busy_s']:.0f} s"
                                                 for n, v in tl["nodes"].items())
                         + (f"; tail {tl['tail_s']:.0f} s" if tl["tail_s"] is not None else ""))
        for o in self.failed:
            lines.append(f"  FAILED {o.cell.label()}: {o.error}")
        for b in self.boards:
            lines.append(f"  leaderboard: {b}")
        if self.tracking_uri:
            lines.append(f"  MLflow: mlflow ui --backend-store-uri {self.tracking_uri}")
        return "\n".join(lines)


def _error_line(e: BaseException) -> str:
    """One line for a failed cell: the innermost mrsbench error's message where there is one."""
    cause = getattr(e, "cause", None) or e   # ray.exceptions.RayTaskError carries the original as .cause
    msg = str(cause).strip().splitlines()
    text = msg[0] if isinstance(cause, MRSBenchError) and msg else f"{type(cause).__name__}: {' '.join(msg)[:300]}"
    return text[:400]

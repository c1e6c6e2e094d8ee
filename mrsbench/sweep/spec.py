"""A sweep's grid: its cells (one results file each, :class:`Cell`) and its specification (:class:`SweepSpec`,
from the command line or a TOML/JSON sweep file)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mrsbench.core.errors import InputError


@dataclass(frozen=True)
class Cell:
    """One results file of the grid."""

    model: str
    dataset: str
    preset: str
    seed: int

    @property
    def is_path(self) -> bool:
        return "/" in self.dataset or os.sep in self.dataset or Path(self.dataset).exists()

    def path(self, root: Path) -> Path:
        folder = Path(self.dataset.rstrip("/")).name if self.is_path else self.dataset   # a data folder: its name
        return Path(root) / folder / self.preset / f"{self.model}-seed{self.seed}.json"

    def label(self) -> str:
        return f"{self.model} {self.dataset}/{self.preset} seed {self.seed}"


@dataclass
class SweepSpec:
    """A sweep: the grid (``seeds`` None: each preset's fixed seeds) and where and how it runs."""

    models: list[str]
    datasets: list[str] = field(default_factory=lambda: ["simgaba-small"])
    presets: list[str] = field(default_factory=lambda: ["quick"])
    seeds: list[int] | None = None
    root: str = "runs/sweep"
    plugins: list[str] = field(default_factory=list)
    backend: str = "auto"                 # "auto" (Ray if installed), "ray", "local"
    address: str | None = None            # an existing Ray cluster ("auto", "ray://host:10001", ...)
    workers: int | None = None            # local Ray: CPUs to start it with (default: all)
    cpus_per_cell: float = 1.0
    gpus_per_cell: float | None = None    # None: what each generator declares in ``resources``
    track: bool = True                    # MLflow: one parent run per sweep, a nested run per cell
    tracking_uri: str | None = None       # default $MLFLOW_TRACKING_URI, else sqlite mlflow.db beside ROOT (sweep_tracking)
    leaderboard: bool = False             # regenerate the boards of the affected folders at the end
    settings: dict = field(default_factory=dict)   # generator settings grid: {key: [values]}, every combination

    def model_names(self, preset: str) -> list[str]:
        """Each model with each combination of ``settings``, as canonical names (``vae[strategy=random]``; a value
        equal to the harness's for ``preset`` dropped, duplicates once). Plugins must be loaded."""
        from mrsbench.generators import registry
        from mrsbench.generators.settings import expand, label, normalise, split_label
        from mrsbench.harness.evaluator import generator_kwargs
        from mrsbench.harness.protocol import get_preset
        grid = {k: [v] if isinstance(v, (str, int, float, bool)) or v is None else list(v)
                for k, v in self.settings.items()}
        out: list[str] = []
        for m in self.models:
            base, named = split_label(m)
            cls = registry.get(base)
            for combo in expand(grid):
                name = label(base, normalise(cls, base, {**named, **combo},
                                             generator_kwargs(cls, base, get_preset(preset), False)))
                if name not in out:
                    out.append(name)
        return out

    def cells(self) -> list[Cell]:
        from mrsbench.harness.protocol import get_preset
        out = []
        for d in self.datasets:
            for p in self.presets:
                seeds = self.seeds if self.seeds is not None else list(get_preset(p).seeds)
                models = self.model_names(p)
                for s in seeds:
                    for m in models:
                        out.append(Cell(m, d, p, int(s)))
        return out


SPEC_KEYS = {f for f in SweepSpec.__dataclass_fields__}


def load_sweep_file(path: str | Path) -> dict:
    """A sweep file: TOML (``.toml``) or JSON with the fields of :class:`SweepSpec` (lists or
    comma-separated strings)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such sweep file")
    try:
        if p.suffix == ".toml":
            import tomllib
            doc = tomllib.loads(p.read_text())
        else:
            doc = json.loads(p.read_text())
    except Exception as e:
        raise InputError(p, f"cannot parse sweep file: {type(e).__name__}: {e}") from None
    doc = doc.get("sweep", doc) if isinstance(doc, dict) else doc
    if not isinstance(doc, dict):
        raise InputError(p, "a sweep file is a table of SweepSpec fields")
    unknown = set(doc) - SPEC_KEYS
    if unknown:
        raise InputError(p, f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SPEC_KEYS))}")
    return doc

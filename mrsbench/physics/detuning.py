"""Editing-pulse detuning: edit-ON basis spectra of the edited metabolites on a grid of frequency offsets.

When B0 drifts by +d Hz, every spin moves up by d Hz while the editing pulse stays at its set frequency, so
relative to the spins the 1.9 ppm pulse sits d Hz lower: the edited multiplets (and NAA's partial
saturation) change with d (Harris et al., MRM 2014;72:941, frequency drift and GABA editing efficiency).
The simulator uses these bases to detune each ON transient; the quantifier uses the same bases, weighted by
the frequency offsets that processing measured for a scan's ON transients, to fit that scan's DIFF.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from mrsbench.core.axis import SpectralAxis

EDITED = ("NAA", "NAAG", "GABA", "Glu", "Gln", "GSH")  # spins within reach of the 1.9 ppm editing pulse
# offsets (Hz) at which edit-ON is simulated; in between, spectra are interpolated linearly (the
# simulator's grid: drift up to ~2 Hz/min over a 10.7 min scan plus a +/-4 Hz site offset stays inside)
EDIT_GRID_HZ = (-24.0, -16.0, -8.0, -4.0, 0.0, 4.0, 8.0, 16.0, 24.0)


def detuned_on_fids(base_cfg, axis: SpectralAxis, on: np.ndarray, names, grid_hz=EDIT_GRID_HZ) -> np.ndarray:
    """Edit-ON FIDs (G, L, N) on ``axis`` at each offset of ``grid_hz``: ``on`` (L, N), the nominal ON FIDs of
    ``names``, with the :data:`EDITED` ones re-simulated with the editing pulse moved by -d Hz
    (``base_cfg``: the :class:`~mrsbench.physics.megapress.MegaPressConfig` of ``on``)."""
    from mrsbench.physics.basis import load_basis
    names = list(names)
    edited = [n for n in EDITED if n in names]
    idx = [names.index(n) for n in edited]
    grid = np.zeros((len(grid_hz), len(names), axis.n_points), complex)
    for g, d_hz in enumerate(grid_hz):
        grid[g] = on
        if d_hz == 0 or not edited:
            continue
        # drift by +d Hz moves the spins up in frequency: the pulse sits d Hz lower relative to them
        b = load_basis(replace(base_cfg, edit_on_ppm=base_cfg.edit_on_ppm - d_hz / base_cfg.f0_mhz), metabolites=EDITED)
        grid[g, idx] = b.fids(axis, "on", edited)
    return grid


def grid_weights(offsets_hz, weights=None, grid_hz=EDIT_GRID_HZ) -> np.ndarray:
    """(G,) weights over ``grid_hz`` that linear interpolation gives the weighted mean of ON spectra at
    ``offsets_hz`` (offsets clipped to the grid's range; ``weights`` default equal); they sum to 1."""
    gh = np.asarray(grid_hz, float)
    d = np.clip(np.asarray(offsets_hz, float), gh[0], gh[-1])
    w = np.ones_like(d) if weights is None else np.asarray(weights, float)
    hi = np.clip(np.searchsorted(gh, d), 1, len(gh) - 1)
    lo = hi - 1
    t = (d - gh[lo]) / (gh[hi] - gh[lo])
    c = np.zeros(len(gh))
    np.add.at(c, lo, w * (1 - t))
    np.add.at(c, hi, w * t)
    s = c.sum()
    if not np.isfinite(s) or s <= 0:
        raise ValueError("grid_weights needs positive finite weights")
    return c / s

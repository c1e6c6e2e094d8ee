"""`mrsbench datasets NAME --realism`: does a cohort look like real Big GABA data?

Compares the cohort's per-subject quality measures (:func:`mrsbench.data.inspection.inspect_cohort`, measured from
the data by processing: the same numbers for simulated and real data) with in-vivo references:

* **Osprey quality measures of 104 Big GABA Philips subjects** (``resources/biggaba_qm.json``; source in its
  ``about``): Cr FWHM, Cr SNR and the averaged spectrum's frequency offset, as samples, so each gets a two-sample
  Kolmogorov-Smirnov distance D (0 = same distribution, 1 = disjoint) with its p-value. Caveats, as the table
  notes say: that data is short-TE PRESS (TE 35 ms, 64 averages), so its Cr SNR is scaled to one average
  (/ sqrt(64)) and to TE 68 (x 0.88: the ~12% T2 loss ../shared/reference/invivo.md gives, approx.); the sign
  convention of Osprey's freqShift is not verified here, so offsets are compared by magnitude; residual water is
  in Osprey's HSVD units, so only the shape of its spread is compared (log10 of each value over its median).
* **Published drift** (no sample): typical 0.3 Hz/min at 3 T, up to 1.2-3.9 Hz/min on some scanners (Tsai et al.,
  Sci Rep 2016; invivo.md); the cohort's median and 90th percentile are shown beside it.
The per-transient frequency track's residual sd and lag-1 autocorrelation have no published reference here and
are listed for comparison between cohorts (e.g. before and after a change of the simulator's dynamics)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

SNR_SCALE = 0.88 / np.sqrt(64)   # Big GABA PRESS Cr SNR (64 averages, TE 35 ms) -> one average at TE 68 ms (approx.)
DRIFT_TYPICAL, DRIFT_HIGH = 0.3, (1.2, 3.9)   # Hz/min (Tsai et al. 2016, via ../shared/reference/invivo.md)


@dataclass
class RealismRow:
    measure: str
    unit: str
    cohort: tuple          # (median, p10, p90) of the cohort
    reference: tuple | None  # (median, p10, p90) of the reference sample, or None
    ks_d: float | None     # two-sample Kolmogorov-Smirnov D (None: no reference sample)
    ks_p: float | None
    note: str

    def to_dict(self) -> dict:
        return {"measure": self.measure, "unit": self.unit, "cohort_median": self.cohort[0],
                "cohort_p10": self.cohort[1], "cohort_p90": self.cohort[2],
                "reference_median": None if self.reference is None else self.reference[0],
                "reference_p10": None if self.reference is None else self.reference[1],
                "reference_p90": None if self.reference is None else self.reference[2],
                "ks_d": self.ks_d, "ks_p": self.ks_p, "note": self.note}


def reference_qm() -> dict:
    """The Big GABA Osprey quality measures: {column: np.ndarray (104,)} and "about"."""
    doc = json.loads(resources.files("mrsbench.resources").joinpath("biggaba_qm.json").read_text())
    return {"about": doc["about"], **{k: np.asarray(v, float) for k, v in doc["columns"].items()}}


def _q(x) -> tuple:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if not len(x):
        return (float("nan"),) * 3
    return tuple(float(v) for v in (np.median(x), np.percentile(x, 10), np.percentile(x, 90)))


def _row(measure, unit, x, ref=None, note="") -> RealismRow:
    from scipy.stats import ks_2samp
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if ref is None or len(x) < 2:
        return RealismRow(measure, unit, _q(x), None if ref is None else _q(ref), None, None, note)
    ks = ks_2samp(x, ref)
    return RealismRow(measure, unit, _q(x), _q(ref), float(ks.statistic), float(ks.pvalue), note)


def realism_rows(table) -> list[RealismRow]:
    """The realism table from a per-subject quality table (:func:`mrsbench.data.inspection.inspect_cohort`)."""
    ref = reference_qm()
    col = lambda k: table[k].to_numpy(float)   # noqa: E731
    water = col("water_rel")
    water_ok = water[np.isfinite(water) & (water > 0)]
    rw = ref["residual_water_ampl"]
    drift = np.abs(col("drift_hz_per_min"))
    return [
        _row("Cr FWHM (OFF average)", "Hz", col("cr_fwhm_hz"), ref["Cr_FWHM"],
             "Big GABA: Osprey Cr FWHM, PRESS TE 35 ms"),
        _row("NAA FWHM (OFF average)", "Hz", col("naa_fwhm_hz"), None,
             "in vivo Cr/NAA FWHM ~6-9 Hz at 3 T (invivo.md, approx.); no sample"),
        _row("Cr SNR per transient", "", col("cr_snr_single"), ref["Cr_SNR"] * SNR_SCALE,
             "Big GABA Cr SNR x 0.88 / sqrt(64): one average at TE 68 (approx.)"),
        _row("|frequency offset| of the average", "Hz", np.abs(col("freq_offset_hz")), np.abs(ref["freqShift"]),
             "magnitudes (Osprey's freqShift sign convention not verified)"),
        _row("residual water spread", "log10(x / median)",
             np.log10(water_ok / np.median(water_ok)) if len(water_ok) else [],
             np.log10(rw / np.median(rw)), "shape of the spread only: water/NAA peak vs Osprey HSVD amplitude"),
        _row("|drift|", "Hz/min", drift, None,
             f"published: typical {DRIFT_TYPICAL} Hz/min, up to {DRIFT_HIGH[0]}-{DRIFT_HIGH[1]} on some scanners "
             "(Tsai et al. 2016); no sample"),
        _row("frequency sd after the drift", "Hz", col("freq_resid_sd_hz"), None, "per-transient; no reference"),
        _row("frequency lag-1 autocorrelation", "", col("freq_lag1"), None,
             "after the drift; 0 = independent jitter; no reference"),
    ]


def render_rows(rows: list[RealismRow]) -> str:
    from tabulate import tabulate
    f = lambda t: "n/a" if t is None else f"{t[0]:.3g} [{t[1]:.3g}, {t[2]:.3g}]"   # noqa: E731
    body = [[r.measure, r.unit, f(r.cohort), f(r.reference), "n/a" if r.ks_d is None else f"{r.ks_d:.2f}",
             "n/a" if r.ks_p is None else f"{r.ks_p:.2g}", r.note] for r in rows]
    return tabulate(body, headers=["measure", "unit", "cohort median [p10, p90]", "reference median [p10, p90]",
                                   "KS D", "p", "note"], tablefmt="github")

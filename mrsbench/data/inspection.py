"""`mrsbench datasets`: what a dataset holds before a run: layout, axis, subjects, sites, transients per
condition and per-subject quality (NAA SNR and Cr FWHM of the processed OFF, Osprey definitions; residual
water relative to NAA), with a figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

WATER_WIN = (4.4, 5.0)   # residual water and its drift-shifted copies (processing.WATER_BAND_PPM)


TR_S = 2.0   # Big GABA's TR (../shared/reference/invivo.md): the clock of a scan whose files do not give one


def frequency_track(p, tr_s: float = TR_S) -> dict:
    """From processing's per-transient frequency corrections (each condition relative to its own reference
    transient, so each is centred on its median): the linear drift (Hz/min; transient k acquired at k * TR), the sd
    of the offsets around that line (Hz) and their lag-1 autocorrelation, over the averaged transients."""
    f = -np.asarray(p.freq_hz, float)   # the correction applied is minus the transient's offset
    use = np.asarray(p.weights) > 0
    for lab in (0, 1):
        m = use & (p.edit == lab)
        if m.any():
            f[m] -= np.median(f[m])
    t_min = np.arange(len(f)) * tr_s / 60.0
    if use.sum() < 3:
        return {"drift_hz_per_min": float("nan"), "freq_resid_sd_hz": float("nan"), "freq_lag1": float("nan")}
    slope, icpt = np.polyfit(t_min[use], f[use], 1)
    r = f[use] - (slope * t_min[use] + icpt)
    lag1 = float(np.corrcoef(r[:-1], r[1:])[0, 1]) if r.std() > 0 else float("nan")
    return {"drift_hz_per_min": float(slope), "freq_resid_sd_hz": float(r.std(ddof=2)), "freq_lag1": lag1}


def inspect_cohort(cohort, progress: bool = True):
    """One row per subject (pandas DataFrame): subject, site, n_on, n_off, naa_snr, cr_fwhm_hz,
    water_rel (max |OFF| in 4.4-5.0 ppm over max |OFF| in the NAA window), and the quality measures the
    realism report compares (:mod:`mrsbench.data.realism`): naa_fwhm_hz, cr_snr_single (Osprey Cr SNR of the
    OFF average / sqrt(n_off): per transient), freq_offset_hz (Cr of the averaged OFF from 3.027 ppm), and the
    frequency track (:func:`frequency_track`; TR from the scan's or the simulation's ``tr_s``, else 2 s)."""
    import pandas as pd
    from tqdm import tqdm

    from mrsbench.processing import process
    from mrsbench.metrics.qc import NAA_WIN
    from mrsbench.metrics import quality as q

    rows = []
    cfg_tr = (cohort.meta.get("config") or {}).get("tr_s")   # a simulated cohort's clock
    for s in tqdm(cohort.scans, desc="inspect", unit="subject", disable=not progress, leave=False):
        p = process(s)
        ax = p.axis
        off = p.spectra()["off"]
        naa = np.abs(off[ax.window(*NAA_WIN)]).max()
        rows.append({"subject": s.subject, "site": s.site, "n_on": int(p.info["n_on"]), "n_off": int(p.info["n_off"]),
                     "naa_snr": q.osprey_snr(off, ax, NAA_WIN), "cr_fwhm_hz": q.osprey_fwhm_hz(p.off, ax, (2.9, 3.1)),
                     "water_rel": float(np.abs(off[ax.window(*WATER_WIN)]).max() / naa) if naa > 0 else float("nan"),
                     "naa_fwhm_hz": q.osprey_fwhm_hz(p.off, ax, NAA_WIN),
                     "cr_snr_single": q.osprey_snr(off, ax, (2.9, 3.1)) / np.sqrt(max(int(p.info["n_off"]), 1)),
                     "freq_offset_hz": -float(p.info.get("cr_shift_hz", np.nan)),
                     **frequency_track(p, float(s.meta.get("tr_s") or cfg_tr or TR_S))})
    table = pd.DataFrame(rows)
    moved = set((cohort.meta.get("harmonisation") or {}).get("resampled") or [])
    if moved:   # which scans were resampled onto the cohort's grid (mrsbench.core.grid), which are as read
        table["resampled"] = ["yes" if s in moved else "no" for s in table["subject"]]
    return table


def figure(table, path: str | Path, title: str) -> Path:
    """Per-subject NAA SNR, Cr FWHM (Hz) and residual water, coloured by site."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3, figsize=(12, 3.6))
    sites = sorted(table["site"].unique())
    x = np.arange(len(table))
    for k, (col, label) in enumerate((("naa_snr", "NAA SNR (OFF, Osprey)"), ("cr_fwhm_hz", "Cr FWHM (Hz)"),
                                      ("water_rel", "residual water / NAA peak"))):
        for site in sites:
            m = (table["site"] == site).to_numpy()
            axs[k].bar(x[m], table[col].to_numpy()[m], label=site or "(no site)")
        axs[k].set_xlabel("subject (index)")
        axs[k].set_ylabel(label)
    axs[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

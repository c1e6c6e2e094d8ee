"""`mrsbench datasets`: what a dataset holds before a run: layout, axis, subjects, sites, transients per
condition and per-subject quality (NAA SNR and Cr FWHM of the processed OFF, Osprey definitions; residual
water relative to NAA), with a figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

WATER_WIN = (4.4, 5.0)   # residual water and its drift-shifted copies (processing.WATER_BAND_PPM)


def inspect_cohort(cohort, progress: bool = True):
    """One row per subject (pandas DataFrame): subject, site, n_on, n_off, naa_snr, cr_fwhm_hz,
    water_rel (max |OFF| in 4.4-5.0 ppm over max |OFF| in the NAA window)."""
    import pandas as pd
    from tqdm import tqdm

    from mrsbench.processing import process
    from mrsbench.metrics.qc import NAA_WIN
    from mrsbench.metrics import quality as q

    rows = []
    for s in tqdm(cohort.scans, desc="inspect", unit="subject", disable=not progress, leave=False):
        p = process(s)
        ax = p.axis
        off = p.spectra()["off"]
        naa = np.abs(off[ax.window(*NAA_WIN)]).max()
        rows.append({"subject": s.subject, "site": s.site, "n_on": int(p.info["n_on"]), "n_off": int(p.info["n_off"]),
                     "naa_snr": q.osprey_snr(off, ax, NAA_WIN), "cr_fwhm_hz": q.osprey_fwhm_hz(p.off, ax, (2.9, 3.1)),
                     "water_rel": float(np.abs(off[ax.window(*WATER_WIN)]).max() / naa) if naa > 0 else float("nan")})
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

"""`mrsbench qc`: quality measures of one processed scan (optionally against a reference scan)."""
from __future__ import annotations

from mrsbench.core.scans import Scan
from mrsbench.metrics import quality as q
from mrsbench.processing import Processed, ProcessingConfig, process

NAA_WIN = (1.8, 2.2)   # Osprey edit-OFF tNAA window
CR_WIN = (2.8, 3.2)    # Osprey tCr window


def quality_report(p: Processed, ref: Processed | None = None, osprey: bool = True) -> dict:
    """Challenge GABA measures of the DIFF (snr, linewidth_ppm, linewidth_hz), Osprey NAA SNR/FWHM
    (OFF) and Cr FWHM (OFF) unless ``osprey`` is False; with ``ref`` also the challenge shape score and
    MSE vs its DIFF."""
    ax = p.axis
    sp = p.spectra()
    lw_ppm, lw_hz = q.challenge_linewidth(sp["diff"].real, ax)
    out = {"snr": q.challenge_snr(sp["diff"].real, ax), "linewidth_ppm": lw_ppm, "linewidth_hz": lw_hz}
    if osprey:
        out.update(naa_snr=q.osprey_snr(sp["off"], ax, NAA_WIN), naa_fwhm_hz=q.osprey_fwhm_hz(p.off, ax, NAA_WIN),
                   cr_fwhm_hz=q.osprey_fwhm_hz(p.off, ax, (2.9, 3.1)))
    if ref is not None:
        rd = ref.spectra()["diff"].real
        out["shape_score"] = q.shape_score(sp["diff"].real, rd, ax)
        out["mse"] = q.challenge_mse(sp["diff"].real, rd, ax)
    return out


def qc_scan(scan: Scan, reference: Scan | None = None, cfg: ProcessingConfig | None = None) -> dict:
    p = process(scan, cfg)
    r = process(reference, cfg) if reference is not None else None
    rep = quality_report(p, r)
    rep["n_on"], rep["n_off"] = p.info["n_on"], p.info["n_off"]
    rep["rejected_transients"] = int(p.rejected.sum())
    return rep

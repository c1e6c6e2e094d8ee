"""Constants (with their sources) and the data types of processing: ProcessingConfig and Processed."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrsbench.core.axis import SpectralAxis


CR_PPM = 3.027     # Cr methyl reference (FSL-MRS edited pipeline, metrics.md sec. 4)
CHO_PPM = 3.2      # ON-to-OFF alignment window centre, +/- 0.09 ppm (Mikkelsen et al. NBM 2020)
# Cr CH3 3.027 ppm, GPC/PCh N(CH3)3 3.21 ppm (Govindaraju et al. NBM 2000, Table 2): Cho sits 0.185 ppm above Cr
CHO_CR_SEP_PPM = 0.185
# L1 sub-spectrum alignment band (Osprey osp_editSubSpecAlignLNorm; Cleve et al. JMR 2017;279:60-69)
L1_ALIGN_PPM = (0.0, 4.2)
# Regions where edit-ON and edit-OFF differ under 1.9 ppm MEGA editing (shifts: Govindaraju et al. NBM 2000,
# Table 2; editing: Mullins et al. NeuroImage 2014): NAA 2.01 and NAAG 2.05 (partly saturated by the editing
# pulse), GABA C3/C2 1.89/2.28 and C4 3.01, Glu/Gln C3/C4 2.04-2.45 and C2 3.75, GSH glutamyl 2.15/2.55/3.77,
# co-edited MM 3.0. The "l1_unedited" ON-to-OFF alignment leaves them out of its L1 sum.
EDITED_PPM = ((1.85, 2.55), (2.88, 3.12), (3.63, 3.87))
WATER_BAND_PPM = (4.4, 5.0)  # residual water (4.68 ppm at 37 C) and its drift-shifted copies


@dataclass(frozen=True)
class ProcessingConfig:
    """Parameters of :func:`process` (ppm windows, s, iteration counts)."""

    # alignment band: FSL-MRS uses 1.9-4.2 ppm for edited data; the upper edge is kept at 4.0 ppm so the
    # tail of residual water (4.68 ppm), which varies from transient to transient, stays out
    align_ppm: tuple[float, float] = (1.8, 4.0)
    t_max_s: float = 0.2                           # spectral registration uses t <= t_max (Near 2015)
    gn_iterations: int = 6
    # residual water varies from transient to transient and its tail reaches into the alignment band:
    # after the first pass, a water model (HSVD of the aligned average, 4.4-5.0 ppm poles) scaled to each
    # transient is subtracted from the copies used for estimating the shifts (not from the averages)
    water_model: bool = True
    ref_passes: int = 2                            # reference updated with w = 0.5 corr^2 between passes
    # ON-to-OFF alignment: "l1_unedited" (default since harness 1.8; L1 norm of the real DIFF over
    # 0-4.2 ppm less the edited ranges, Cleve et al. 2017), "cho_tails" (least squares over Cho
    # 3.2 +/- 0.09 ppm against OFF plus the DIFF's own tails there), "cho", "l1" (all of 0-4.2 ppm),
    # "water" (4.68 +/- 0.22) or "none"; see align_on_to_off
    align_conditions: str = "l1_unedited"
    weighted: bool = True                          # Osprey weighted averaging, w ~ 1/d^2
    reject_outliers: bool = True
    outlier_z: float = 3.0                         # robust z-score of d above which a transient is rejected
    cr_reference: bool = True
    phase_tcr: bool = True                         # zero-order phase from a Cr/Cho line-shape fit of OFF


@dataclass
class Processed:
    """Result of :func:`process`: averaged FIDs (N,), per-transient estimates and weights."""

    axis: SpectralAxis
    on: np.ndarray
    off: np.ndarray
    freq_hz: np.ndarray           # (T,) estimated frequency offset of each transient vs its reference
    phase_rad: np.ndarray         # (T,)
    weights: np.ndarray           # (T,) normalised per condition; 0 for rejected transients
    rejected: np.ndarray          # (T,) bool
    edit: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def diff(self) -> np.ndarray:
        return self.on - self.off

    def on_offsets_hz(self) -> tuple[np.ndarray, np.ndarray]:
        """Frequency offset (Hz) of every averaged edit-ON transient when it was acquired, and its averaging
        weight: minus the total shift processing applied to it (its alignment, the Cr referencing, the
        ON-to-OFF alignment). A spin at +d Hz saw the editing pulse d Hz lower (see
        :mod:`mrsbench.physics.detuning`). Transients with weight 0 (rejected, dropped) are left out."""
        i = np.flatnonzero((self.edit == 1) & (self.weights > 0))
        applied = self.freq_hz[i] + self.info.get("cr_shift_hz", 0.0) + self.info.get("on_to_off_hz", 0.0)
        return -applied, self.weights[i]

    def spectra(self) -> dict[str, np.ndarray]:
        ax = self.axis
        return {"on": ax.to_spectrum(self.on), "off": ax.to_spectrum(self.off), "diff": ax.to_spectrum(self.diff)}

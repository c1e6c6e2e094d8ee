"""Processing of edited transients: alignment, weighted averaging, subtraction, referencing.

Every step is a small pure function on arrays; :func:`process` composes them with a
:class:`ProcessingConfig`. Shapes: transients (T, N) complex FIDs; spectra via the axis convention.
Modules: :mod:`.config` (constants with sources, ProcessingConfig, Processed), :mod:`.alignment`,
:mod:`.averaging`, :mod:`.referencing`, :mod:`.pipeline`.
"""
from mrsbench.processing.alignment import align_condition, align_on_to_off, apply_shift, band_filter, hsvd_components, phasor, spectral_registration
from mrsbench.processing.averaging import averaging_weights, transient_distances
from mrsbench.processing.config import CHO_CR_SEP_PPM, CHO_PPM, CR_PPM, L1_ALIGN_PPM, WATER_BAND_PPM, Processed, ProcessingConfig
from mrsbench.processing.pipeline import check_transients, process, process_many, process_subset, remember, scan_key
from mrsbench.processing.referencing import cr_reference_shift, peak_ppm, tcr_phase

__all__ = ["align_condition", "align_on_to_off", "apply_shift", "band_filter", "hsvd_components", "phasor",
           "spectral_registration", "averaging_weights", "transient_distances", "CHO_CR_SEP_PPM", "CHO_PPM",
           "CR_PPM", "L1_ALIGN_PPM", "WATER_BAND_PPM", "Processed", "ProcessingConfig", "check_transients",
           "process", "process_many", "process_subset", "remember", "scan_key", "cr_reference_shift", "peak_ppm", "tcr_phase"]

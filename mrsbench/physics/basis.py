"""Basis sets: simulated metabolite line lists for edit-ON/OFF, Gaussian MM/lipid components,
rendering on any spectral axis, a parameter-keyed disk cache and the FSL-MRS JSON writer.

A basis stores, per component and condition, a list of lines (frequency in Hz relative to the
simulation carrier, complex amplitude) rather than sampled FIDs, so it can be rendered on any
spectral width / number of points / receiver centre at the simulated field strength.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from mrsbench.core.files import atomic_path, atomic_savez
from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError
from mrsbench.physics.megapress import MegaPressConfig, simulate_molecule

# FSL-MRS places the 1H receiver (0 Hz) at 4.65 ppm (fsl_mrs constants.PPM_SHIFT; formats.md)
FSL_CENTRE_PPM = 4.65
PHYSICS_VERSION = "1"  # bump when simulation code changes results: invalidates caches

DEFAULT_METABOLITES = ("NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "mI", "sI", "Glu", "Gln", "GSH", "GABA",
                       "Lac", "Asp", "Tau", "H2O")
CONDITIONS = ("on", "off")

# Gaussian macromolecule/lipid components: (ppm, FWHM ppm, protons) per peak.
# LCModel manual (Provencher) sec. 11.7 default simulated MM/lipid signals, as used by Osprey;
# MM3co from Osprey's MEGA model: 3.0 ppm, 2 H, FWHM 14 Hz (../shared/reference/invivo.md).
MM_COMPONENTS: dict[str, list[tuple[float, float, float]]] = {
    "MM09": [(0.91, 0.14, 3.0)],
    "MM12": [(1.21, 0.15, 2.0)],
    "MM14": [(1.43, 0.17, 2.0)],
    "MM17": [(1.67, 0.15, 2.0)],
    "MM20": [(2.08, 0.15, 1.33), (2.25, 0.15, 0.67), (1.95, 0.15, 0.33), (3.0, 0.2, 0.4)],
    "Lip09": [(0.89, 0.14, 3.0)],
    "Lip13": [(1.28, 0.15, 2.0), (1.30, 0.089, 2.0)],
    "Lip20": [(2.04, 0.15, 1.33), (2.25, 0.15, 0.67), (2.8, 0.2, 0.87)],
}
MM3CO_PPM, MM3CO_FWHM_HZ, MM3CO_PROTONS = 3.0, 14.0, 2.0  # co-edited: present in edit-ON only


def spin_table() -> dict:
    """The project's spin-system table (mrsbench/resources/spin_systems.json)."""
    text = resources.files("mrsbench.resources").joinpath("spin_systems.json").read_text()
    return json.loads(text)


def _table_hash() -> str:
    text = resources.files("mrsbench.resources").joinpath("spin_systems.json").read_bytes()
    return hashlib.sha256(text).hexdigest()[:16]


def cache_dir() -> Path:
    """Cache folder: $MRSBENCH_CACHE, else ~/.cache/mrsbench."""
    return Path(os.environ.get("MRSBENCH_CACHE", Path.home() / ".cache" / "mrsbench"))


@dataclass
class BasisSet:
    """Simulated MEGA-PRESS basis.

    lines[name][cond] = (freq_hz, amp) with freq relative to ``config.centre_ppm`` at
    ``config.f0_mhz``; ``gaussians[name][cond]`` = list of (ppm, fwhm_hz, protons) peaks.
    """

    config: MegaPressConfig
    lines: dict = field(default_factory=dict)
    gaussians: dict = field(default_factory=dict)
    key: str = ""

    @property
    def names(self) -> list[str]:
        return list(self.lines) + list(self.gaussians)

    @property
    def metabolites(self) -> list[str]:
        return list(self.lines)

    def fids(self, axis: SpectralAxis, cond: str, names=None, lw_hz: float = 0.0) -> np.ndarray:
        """Basis FIDs (n_names, n_points) on ``axis`` for cond 'on', 'off' or 'diff' (= on - off).

        ``lw_hz`` applies Lorentzian broadening (FWHM, Hz) to metabolites; Gaussian components keep
        their own widths. Raises if the axis's field strength differs from the simulated one.
        """
        if not np.isclose(axis.f0_mhz, self.config.f0_mhz, rtol=1e-3):
            raise InputError("basis", f"basis simulated at {self.config.f0_mhz} MHz cannot be rendered at "
                             f"{axis.f0_mhz} MHz (J couplings do not scale with field)")
        names = list(names) if names is not None else self.names
        if cond == "diff":
            return self.fids(axis, "on", names, lw_hz) - self.fids(axis, "off", names, lw_hz)
        if cond not in CONDITIONS:
            raise ValueError(f"cond must be 'on', 'off' or 'diff', got {cond!r}")
        t = axis.time
        shift_hz = (self.config.centre_ppm - axis.centre_ppm) * axis.f0_mhz
        out = np.zeros((len(names), axis.n_points), complex)
        for k, name in enumerate(names):
            if name in self.lines:
                f, a = self.lines[name][cond]
                if len(f):
                    out[k] = np.exp(2j * np.pi * np.outer(t, f + shift_hz)) @ a
                out[k] *= np.exp(-np.pi * lw_hz * t)
            elif name in self.gaussians:
                for ppm, fwhm_hz, protons in self.gaussians[name][cond]:
                    nu = (ppm - axis.centre_ppm) * axis.f0_mhz
                    out[k] += protons * np.exp(2j * np.pi * nu * t) * np.exp(-(np.pi * fwhm_hz * t) ** 2 / (4 * np.log(2)))
            else:
                raise KeyError(f"{name!r} not in basis (has {', '.join(self.names)})")
        return out

    # --- persistence -------------------------------------------------------------
    def save_npz(self, path: Path) -> None:
        arrs = {"config": json.dumps(self.config.to_dict()), "key": self.key,
                "gaussians": json.dumps(self.gaussians)}
        for name, d in self.lines.items():
            for cond, (f, a) in d.items():
                arrs[f"f|{name}|{cond}"] = f
                arrs[f"a|{name}|{cond}"] = a
        atomic_savez(path, **arrs)

    @classmethod
    def load_npz(cls, path: Path) -> "BasisSet":
        z = np.load(path, allow_pickle=False)
        cfg = MegaPressConfig(**json.loads(str(z["config"])))
        lines: dict = {}
        for k in z.files:
            if k.startswith("f|"):
                _, name, cond = k.split("|")
                lines.setdefault(name, {})[cond] = (z[k], z[f"a|{name}|{cond}"])
        g = {n: {c: [tuple(p) for p in v] for c, v in d.items()} for n, d in json.loads(str(z["gaussians"])).items()}
        return cls(cfg, lines, g, str(z["key"]))

    def write_fsl(self, out_dir: str | Path, axis: SpectralAxis | None = None, lw_hz: float = 2.0) -> list[Path]:
        """Write FSL-MRS JSON basis files, one per component and condition:
        ``OUT/edit_on/NAME.json``, ``OUT/edit_off/NAME.json`` and ``OUT/edit_diff/NAME.json`` (keys
        basis_re, basis_im, basis_dwell (s), basis_centre (MHz), basis_width (Hz), basis_name,
        basis_nucleus), in FSL-MRS's own convention (fsl_mrs/utils/mrs_io/fsl_io.py; formats.md):
        the receiver at 4.65 ppm (FSL-MRS ``constants.PPM_SHIFT``, whatever ``axis.centre_ppm`` says:
        only its width, points and field are used) and the *conjugate* of the FID stored (its writer
        conjugates, its reader conjugates back). A component with no signal in a condition (MM3co
        outside DIFF/ON) gets no file there."""
        from dataclasses import replace
        axis = replace(axis or SpectralAxis(f0_mhz=self.config.f0_mhz), centre_ppm=FSL_CENTRE_PPM)
        out_dir = Path(out_dir)
        written = []
        for cond in ("on", "off", "diff"):
            d = out_dir / f"edit_{cond}"
            d.mkdir(parents=True, exist_ok=True)
            fids = self.fids(axis, cond, lw_hz=lw_hz)
            for name, fid in zip(self.names, fids):
                if not np.any(np.abs(fid) > 0):
                    continue
                stored = np.conj(fid)
                doc = {"basis": {"basis_re": stored.real.tolist(), "basis_im": stored.imag.tolist(),
                                 "basis_dwell": axis.dwell_s, "basis_centre": axis.f0_mhz,
                                 "basis_width": lw_hz, "basis_name": name, "basis_nucleus": "1H"},
                       "meta": {"sequence": "MEGA-PRESS", "condition": cond, "generator": "mrsbench",
                                "physics_version": PHYSICS_VERSION, "cache_key": self.key,
                                "centre_ppm": axis.centre_ppm, "fid_stored_as": "conjugate (FSL-MRS)",
                                "config": self.config.to_dict()}}
                p = d / f"{name}.json"
                with atomic_path(p, ".json") as tmp:
                    Path(tmp).write_text(json.dumps(doc))
                written.append(p)
        return written


    def write_lcmodel(self, out_dir: str | Path, axis: SpectralAxis | None = None, lw_hz: float = 2.0,
                      seq: str = "MEGA-PRESS") -> list[Path]:
        """Write LCModel ``.BASIS`` files (also read by Osprey, FSL-MRS and FID-A): ``OUT/edit_on.BASIS``,
        ``OUT/edit_off.BASIS`` and ``OUT/edit_diff.BASIS``, components with no signal left out.

        Layout as LCModel's makebasis writes it (LCModel manual, sec. 10; Osprey io_writelcmBASIS):
        ``$SEQPAR`` (FWHMBA ppm, HZPPPM MHz, ECHOT ms, SEQ), ``$BASIS1`` (IDBASI, FMTBAS, BADELT s,
        NDATAB), then per component ``$NMUSED`` and ``$BASIS`` (ID, METABO, CONC, TRAMP, VOLUME, ISHIFT)
        followed by NDATAB complex points as real/imaginary pairs in FMTBAS '(2E15.6)'. The points are
        the *spectrum* FFT(conj(FID)) without fftshift, the receiver at 4.65 ppm (LCModel's PPMCEN
        default), ISHIFT 0: what FSL-MRS's readLCModelBasis (roll by -ISHIFT, inverse FFT, conjugate)
        and FID-A's io_readlcmraw_basis (conjugate by default) turn back into this FID."""
        from dataclasses import replace
        axis = replace(axis or SpectralAxis(f0_mhz=self.config.f0_mhz), centre_ppm=FSL_CENTRE_PPM)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for cond in ("on", "off", "diff"):
            fids = self.fids(axis, cond, lw_hz=lw_hz)
            lines = [" $SEQPAR", f" FWHMBA = {lw_hz / axis.f0_mhz:.6f},", f" HZPPPM = {axis.f0_mhz:.6f},",
                     f" ECHOT = {self.config.te_s * 1e3:.2f},", f" SEQ = '{seq}'", " $END", " $BASIS1",
                     f" IDBASI = 'mrsbench {seq} TE {self.config.te_s * 1e3:.0f} ms edit-{cond.upper()} "
                     f"[{self.key}]',", " FMTBAS = '(2E15.6)',", f" BADELT = {axis.dwell_s:.6e},",
                     f" NDATAB = {axis.n_points}", " $END"]
            for name, fid in zip(self.names, fids):
                if not np.any(np.abs(fid) > 0):
                    continue
                spec = np.fft.fft(np.conj(fid))
                lines += [" $NMUSED", " XTRASH = 0", " $END", " $BASIS", f" ID = '{name}',", f" METABO = '{name}',",
                          " CONC = 1.,", " TRAMP = 1.,", " VOLUME = 1.,", " ISHIFT = 0", " $END"]
                lines += [f"{a:15.6E}{b:15.6E}" for a, b in zip(spec.real, spec.imag)]
            p = out_dir / f"edit_{cond}.BASIS"
            with atomic_path(p, ".BASIS") as tmp:
                Path(tmp).write_text("\n".join(lines) + "\n")
            written.append(p)
        return written


def basis_key(config: MegaPressConfig, metabolites, edit_shift_hz: float = 0.0) -> str:
    payload = json.dumps({"config": config.to_dict(), "metabolites": list(metabolites),
                          "mm": MM_COMPONENTS, "mm3co": [MM3CO_PPM, MM3CO_FWHM_HZ, MM3CO_PROTONS],
                          "table": _table_hash(), "version": PHYSICS_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def simulate_basis(config: MegaPressConfig | None = None, metabolites=DEFAULT_METABOLITES,
                   progress: bool = False) -> BasisSet:
    """Simulate a basis (no cache). GABA uses ``config.gaba_set``."""
    config = config or MegaPressConfig()
    table = spin_table()["systems"]
    lines = {}
    it = metabolites
    if progress:
        from tqdm import tqdm
        it = tqdm(metabolites, desc="simulating basis", unit="metab")
    for name in it:
        key = "GABA_gov" if (name == "GABA" and config.gaba_set == "govindaraju") else name
        if key not in table:
            raise InputError("basis", f"unknown metabolite {name!r}")
        groups = table[key]["groups"]
        lines[name] = {
            "on": simulate_molecule(groups, config, config.edit_on_ppm),
            "off": simulate_molecule(groups, config, config.edit_off_ppm),
        }
    fwhm = lambda ppm_w: ppm_w * config.f0_mhz
    gauss = {n: {c: [(p, fwhm(w), h) for p, w, h in peaks] for c in CONDITIONS} for n, peaks in MM_COMPONENTS.items()}
    gauss["MM3co"] = {"on": [(MM3CO_PPM, MM3CO_FWHM_HZ, MM3CO_PROTONS)], "off": []}
    return BasisSet(config, lines, gauss, basis_key(config, metabolites))


def load_basis(config: MegaPressConfig | None = None, metabolites=DEFAULT_METABOLITES, use_cache: bool = True,
               progress: bool = False) -> BasisSet:
    """Basis from the disk cache (keyed by every parameter, the spin table and PHYSICS_VERSION),
    simulating and caching it on a miss."""
    config = config or MegaPressConfig()
    key = basis_key(config, metabolites)
    path = cache_dir() / "basis" / f"{key}.npz"
    if use_cache and path.exists():
        try:
            return BasisSet.load_npz(path)
        except Exception:  # a corrupt cache file is rebuilt, never trusted
            pass
    b = simulate_basis(config, metabolites, progress=progress)
    if use_cache:
        b.save_npz(path)
    return b

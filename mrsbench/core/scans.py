"""Core data types: one edited scan, and a cohort of scans with subject-level splits.

A :class:`Scan` holds complex FIDs shaped ``(n_transients, n_points)`` with an edit
label per transient (1 = edit-ON, 0 = edit-OFF) and its :class:`~mrsbench.core.axis.SpectralAxis`.
A :class:`Cohort` holds many scans with subject ids, site ids and optional ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from mrsbench.core.axis import SpectralAxis
from mrsbench.core.errors import InputError

ON, OFF = 1, 0


def validate_fids(fids, source: str = "fids", min_transients: int = 2) -> np.ndarray:
    """Check a transient array and return it as complex128 ``(n_transients, n_points)``.

    Raises :class:`InputError` naming ``source`` for wrong dtype, wrong shape, too few
    transients or non-finite samples.
    """
    arr = np.asarray(fids)
    if arr.dtype.kind not in "cf":
        raise InputError(source, f"wrong dtype {arr.dtype}: transients must be complex (or real) floating point")
    if arr.dtype.kind == "f":
        raise InputError(source, f"wrong dtype {arr.dtype}: FIDs must be complex, got real-valued data")
    if arr.ndim != 2:
        raise InputError(source, f"wrong shape {arr.shape}: expected (transients, points)")
    if arr.shape[0] < min_transients:
        raise InputError(source, f"only {arr.shape[0]} transient(s); at least {min_transients} are needed")
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.isfinite(arr)))
        raise InputError(source, f"{n_bad} NaN/Inf sample(s) in the transients")
    return arr.astype(np.complex128, copy=False)


def check_complex(data: np.ndarray, src) -> None:
    """A one-line error for complex data whose imaginary part is zero everywhere: a FID is complex (quadrature
    detection); real values stored as complex (a real part or magnitude only) would give plausible but wrong
    spectra (the spectrum of a real signal is conjugate-symmetric about the receiver frequency)."""
    if data.size and not np.any(np.imag(data)) and np.any(np.real(data)):
        raise InputError(src, "the imaginary part is zero everywhere: the file holds real values (a real part or "
                              "magnitude only), not complex FIDs")


@dataclass
class Scan:
    """One edited MRS scan.

    Attributes
    ----------
    fids : complex128 array (n_transients, n_points), acquisition order.
    edit : int8 array (n_transients,), 1 = edit-ON, 0 = edit-OFF.
    axis : spectral axis of the FIDs.
    subject, site : identifiers.
    meta : free-form metadata (TE in s, source file, ...).
    """

    fids: np.ndarray
    edit: np.ndarray
    axis: SpectralAxis
    subject: str = ""
    site: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.meta.get("source") or (f"subject {self.subject}" if self.subject else "Scan")
        self.fids = validate_fids(self.fids, src)
        edit = np.asarray(self.edit)
        if edit.shape != (self.fids.shape[0],):
            raise InputError(src, f"edit labels have shape {edit.shape}, expected ({self.fids.shape[0]},)")
        if not np.all(np.isin(edit, (0, 1))):
            raise InputError(src, "edit labels must be 0 (OFF) or 1 (ON)")
        self.edit = edit.astype(np.int8)
        if self.fids.shape[1] != self.axis.n_points:
            raise InputError(src, f"{self.fids.shape[1]} points but the spectral axis has {self.axis.n_points}")
        if not np.any(self.edit == ON) or not np.any(self.edit == OFF):
            raise InputError(src, "needs both edit-ON and edit-OFF transients")

    @property
    def n_transients(self) -> int:
        return self.fids.shape[0]

    @property
    def on(self) -> np.ndarray:
        """Edit-ON FIDs (n_on, n_points)."""
        return self.fids[self.edit == ON]

    @property
    def off(self) -> np.ndarray:
        """Edit-OFF FIDs (n_off, n_points)."""
        return self.fids[self.edit == OFF]

    def spectra(self) -> np.ndarray:
        """Spectra of all transients (n_transients, n_points)."""
        return self.axis.to_spectrum(self.fids)

    def select(self, index) -> "Scan":
        """A new scan made of the transients ``index`` (boolean mask or integer indices)."""
        return Scan(self.fids[index], self.edit[index], self.axis, self.subject, self.site, dict(self.meta))

    @classmethod
    def from_on_off(cls, on: np.ndarray, off: np.ndarray, axis: SpectralAxis, interleave: bool = True,
                    **kw) -> "Scan":
        """Build a scan from separate ON (n_on, N) and OFF (n_off, N) arrays.

        With ``interleave`` (and equal counts) transients are ordered ON, OFF, ON, OFF, ...
        as acquired; otherwise all ON then all OFF.
        """
        on = np.asarray(on)
        off = np.asarray(off)
        if on.ndim != 2 or off.ndim != 2:
            raise InputError(kw.get("meta", {}).get("source", "Scan"), "ON and OFF must each be (transients, points)")
        if interleave and on.shape == off.shape:
            fids = np.empty((on.shape[0] * 2, on.shape[1]), dtype=np.result_type(on, off))
            fids[0::2], fids[1::2] = on, off
            edit = np.tile(np.array([ON, OFF], dtype=np.int8), on.shape[0])
        else:
            fids = np.concatenate([on, off])
            edit = np.r_[np.ones(len(on), np.int8), np.zeros(len(off), np.int8)]
        return cls(fids, edit, axis, **kw)


@dataclass(frozen=True)
class Split:
    """Subject ids of a train/validation/test split."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int

    def to_dict(self) -> dict:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test), "seed": self.seed}


@dataclass
class Cohort:
    """Many scans, one per subject, sharing one spectral axis.

    ``ground_truth`` is an optional :class:`pandas.DataFrame` with one row per subject
    (column ``subject``), e.g. true concentrations of a simulated cohort.
    """

    scans: list[Scan]
    name: str = "cohort"
    ground_truth: object = None  # pandas.DataFrame | None (pandas imported lazily)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.scans) == 0:
            raise InputError(self.name, "a cohort needs at least one scan")
        ids = [s.subject for s in self.scans]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise InputError(self.name, f"duplicate subject ids: {', '.join(dup)}")
        ax = self.scans[0].axis
        for s in self.scans[1:]:
            _check_axis_match(ax, s.axis, s.meta.get("source") or f"subject {s.subject}")

    @property
    def axis(self) -> SpectralAxis:
        return self.scans[0].axis

    @property
    def subjects(self) -> list[str]:
        return [s.subject for s in self.scans]

    @property
    def sites(self) -> list[str]:
        return [s.site for s in self.scans]

    def __len__(self) -> int:
        return len(self.scans)

    def __iter__(self):
        return iter(self.scans)

    def __getitem__(self, subject: str) -> Scan:
        for s in self.scans:
            if s.subject == subject:
                return s
        raise KeyError(subject)

    def subset(self, subjects: Iterable[str]) -> "Cohort":
        """A cohort of the given subjects (in the given order)."""
        subjects = list(subjects)
        gt = self.ground_truth
        if gt is not None:
            gt = gt.set_index("subject").loc[subjects].reset_index()
        return Cohort([self[s] for s in subjects], self.name, gt, dict(self.meta))

    def kfold(self, seed: int, k: int, val_fraction: float = 0.25) -> "Folds":
        """Site-stratified subject-level k-fold evaluation (:func:`kfold_split`)."""
        return kfold_split(self.subjects, self.sites, seed, k, val_fraction)

    def split(self, seed: int, fractions: Sequence[float] = (0.6, 0.2, 0.2), stratify_sites: bool = True) -> Split:
        """Deterministic subject-level train/val/test split.

        Subjects are shuffled with ``numpy.random.default_rng(seed)``; with ``stratify_sites``
        each site's subjects are dealt across the splits in proportion to ``fractions`` so
        every split sees every site where counts allow. No subject is in two splits.
        """
        fr = np.asarray(fractions, dtype=float)
        if fr.shape != (3,) or np.any(fr < 0) or fr.sum() <= 0:
            raise InputError("split", f"fractions must be three non-negative numbers, got {fractions}")
        fr = fr / fr.sum()
        rng = np.random.default_rng(seed)
        groups: dict[str, list[str]] = {}
        for s in self.scans:
            groups.setdefault(s.site if stratify_sites else "", []).append(s.subject)
        parts: list[list[str]] = [[], [], []]
        carry = np.zeros(3)  # fractional remainders carried across sites, for exact overall proportions
        for site in sorted(groups):
            subj = sorted(groups[site])
            rng.shuffle(subj)
            want = fr * len(subj) + carry
            counts = np.floor(want).astype(int)
            rest = len(subj) - counts.sum()
            for k in np.argsort(-(want - counts), kind="stable")[:rest]:
                counts[k] += 1
            carry = want - counts
            i0 = 0
            for k in range(3):
                parts[k].extend(subj[i0:i0 + counts[k]])
                i0 += counts[k]
        n = len(self.scans)
        if n >= 3:
            # never leave a split with a positive fraction empty
            for k in range(3):
                if fr[k] > 0 and not parts[k]:
                    donor = int(np.argmax([len(p) for p in parts]))
                    parts[k].append(parts[donor].pop())
        return Split(tuple(parts[0]), tuple(parts[1]), tuple(parts[2]), seed)


@dataclass(frozen=True)
class Folds:
    """Subject-level k-fold evaluation: every subject is a test subject in exactly one fold. Each fold is a
    :class:`Split` (its own train/validation/test); ``test`` is every subject, in fold order."""

    folds: tuple[Split, ...]
    seed: int

    @property
    def k(self) -> int:
        return len(self.folds)

    @property
    def test(self) -> tuple[str, ...]:
        return tuple(s for f in self.folds for s in f.test)

    def fold_of(self) -> dict[str, int]:
        """subject -> index of the fold in which it is tested."""
        return {s: i for i, f in enumerate(self.folds) for s in f.test}

    def to_dict(self) -> dict:
        return {"k": self.k, "seed": self.seed, "test": list(self.test), "folds": [f.to_dict() for f in self.folds]}


def kfold_split(subjects: Sequence[str], sites: Sequence[str], seed: int, k: int, val_fraction: float = 0.25) -> Folds:
    """Site-stratified subject-level k-fold split (pure function of the ids, the sites and ``seed``).

    Each site's subjects are shuffled with ``numpy.random.default_rng(seed)`` and dealt round-robin over the
    folds, continuing where the previous site stopped, so fold sizes differ by at most one and every fold sees
    every site where counts allow (stratified k-fold, as scikit-learn's StratifiedGroupKFold intends). In fold
    f the other subjects are split into validation (``val_fraction`` of them, again dealt site by site) and
    training. No subject is in two parts of a fold."""
    if k < 2:
        raise InputError("split", f"k-fold needs k >= 2 folds, got {k}")
    if len(subjects) < k:
        raise InputError("split", f"{len(subjects)} subjects cannot fill {k} folds")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for s, site in zip(subjects, sites):
        groups.setdefault(site, []).append(s)
    fold_of: dict[str, int] = {}
    pos = 0
    for site in sorted(groups):
        subj = sorted(groups[site])
        rng.shuffle(subj)
        for s in subj:
            fold_of[s] = pos % k
            pos += 1
    site_of = dict(zip(subjects, sites))
    folds = []
    for f in range(k):
        test = [s for s in subjects if fold_of[s] == f]
        rest = [s for s in subjects if fold_of[s] != f]
        frng = np.random.default_rng([seed, f])
        by_site: dict[str, list[str]] = {}
        for s in rest:
            by_site.setdefault(site_of[s], []).append(s)
        val, carry = [], 0.0
        for site in sorted(by_site):
            subj = sorted(by_site[site])
            frng.shuffle(subj)
            want = val_fraction * len(subj) + carry
            nv = min(int(np.floor(want + 1e-9)), len(subj) - 1)
            carry = want - nv
            val += subj[:nv]
        if not val and val_fraction > 0 and len(rest) >= 2:
            val = [sorted(rest)[int(frng.integers(len(rest)))]]
        train = [s for s in rest if s not in set(val)]
        folds.append(Split(tuple(train), tuple(s for s in rest if s in set(val)), tuple(test), seed))
    return Folds(tuple(folds), seed)


def _check_axis_match(ref: SpectralAxis, ax: SpectralAxis, source: str) -> None:
    if ax.n_points != ref.n_points:
        raise InputError(source, f"{ax.n_points} points, but the cohort has {ref.n_points}")
    if not np.isclose(ax.sw_hz, ref.sw_hz, rtol=1e-6):
        raise InputError(source, f"spectral width {ax.sw_hz:g} Hz differs from the cohort's {ref.sw_hz:g} Hz")
    if not np.isclose(ax.f0_mhz, ref.f0_mhz, rtol=1e-3):
        raise InputError(source, f"spectrometer frequency {ax.f0_mhz:g} MHz (field strength "
                         f"{ax.f0_mhz / 42.577:.2f} T) differs from the cohort's {ref.f0_mhz:g} MHz "
                         f"({ref.f0_mhz / 42.577:.2f} T)")

"""The versioned evaluation protocol: harness version, results schema and presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mrsbench.core.errors import InputError

HARNESS_VERSION = "1.11"   # bump whenever the protocol (presets, metrics, splits, quantifier) changes; 1.4: LCM fits converge (sigma^2, variable projection, 2 starts); 1.5: exact NNLS + second start only where needed, average frame at the median transient; 1.6: effective transients (subset-alone curve), truth-referenced scores, honest SNR, failures left out of the means, the full scan fitted once per subject; 1.7: quick preset in 4 site-stratified folds (every subject tested), per-subject statistics with bootstrap intervals, noise ratio of means; 1.8: ON-to-OFF alignment by the L1 norm of the DIFF outside the edited ranges (l1_unedited); 1.9: DIFF fitted with the OFF fit's phase and with each scan's own editing (ON basis at its transients' measured frequency offsets); 1.10: residual water removed from OFF (HSVD) before the LCM fit instead of fitted as its own line-shape group (its side minima: 10-11 of 48 fresh-seed fits off the best minimum), initial LM damping 0.1; 1.11: copied noise (application: the share of a perturbation of the short scan's noise that reappears in the fill, at the middle n), honesty column
SCHEMA = "mrsbench.results/1"


@dataclass(frozen=True)
class Preset:
    """Evaluation protocol parameters."""

    name: str
    n_values: tuple[int, ...] = (20, 40)        # transients per condition in the short scan
    n_subsets: int = 3                          # random subsets per subject and n
    full_count: int = 160                       # fill up to this many per condition
    embedding_samples: int = 300                # fixed sample size for the two-sample statistics
    feature_dim: int = 16                       # PCA feature space fitted on real training data
    feature_ppm: tuple[float, float] = (1.8, 4.2)
    umap_neighbors: int = 15
    umap_epochs: int = 200
    generator_kwargs: dict = field(default_factory=dict)
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    # subject-level k-fold evaluation (every subject tested once per seed; the generator is trained k times);
    # 1: one train/validation/test split by split_fractions. In a fold, validation takes val/(train+val) of
    # the other subjects.
    folds: int = 1
    seeds: tuple[int, ...] = (0, 1, 2)          # fixed seeds used by `mrsbench submit`

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def val_fraction(self) -> float:
        """Validation share of the non-test subjects in a fold."""
        tr, va, _ = self.split_fractions
        return va / (tr + va) if tr + va > 0 else 0.0

    def protocol_dict(self) -> dict:
        """What the model-independent work depends on (not the generator settings or the seed list)."""
        d = self.to_dict()
        for k in ("generator_kwargs", "seeds", "name"):
            d.pop(k)
        return d


PRESETS = {
    # 4 site-stratified folds: on simgaba-small (12 subjects, 3 sites) each fold tests one subject per site and
    # every subject is tested once per seed; one subset per subject and n keeps the application work near
    # that of the former 2-test-subject split with 3 subsets (issue 21)
    "quick": Preset("quick", folds=4, n_subsets=1),
    "paper": Preset("paper", n_values=(10, 20, 40, 80), n_subsets=5, embedding_samples=1000, umap_epochs=400),
    # for tests and smoke runs only: small, fast, not for leaderboards
    "tiny": Preset("tiny", n_values=(20,), n_subsets=1, embedding_samples=120, umap_epochs=50,
                   generator_kwargs={"vae": {"epochs": 4, "hidden": [128], "latent_dim": 8}}, seeds=(0,)),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]

"""Generators: registry, plugins, validity, determinism, training behaviour."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mrsbench.generators import registry
from mrsbench.generators.contract import GeneratorError, LatentSampling, check_generator_class, validate_samples

FAST = {"vae": {"epochs": 6, "hidden": (128,), "latent_dim": 8}, "pca": {"n_components": 8}, "physics": {}}


@pytest.fixture(scope="module")
def fitted(small_split):
    tr, va, _ = small_split
    return {name: registry.get(name)(**FAST[name]).fit(tr, seed=0, val=va) for name in ("vae", "pca", "physics")}


def test_builtins_registered_through_entry_points():
    assert {"vae", "pca", "physics"} <= registry.builtin_names()


@pytest.mark.parametrize("name", ["vae", "pca", "physics"])
def test_valid_conditioned_and_unconditioned_samples(fitted, small_split, name):
    g = fitted[name]
    cond = small_split[2].scans[0].select(np.arange(40))
    out = validate_samples(g.sample(12, condition=cond, seed=3), 12, small_split[0].axis, name)
    assert out.fids.shape == (24, 2048)
    out = validate_samples(g.sample(5, seed=3), 5, small_split[0].axis, name)
    # determinism by seed; a different seed gives different samples
    a = g.sample(6, condition=cond, seed=11).fids
    b = g.sample(6, condition=cond, seed=11).fids
    c = g.sample(6, condition=cond, seed=12).fids
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_is_deterministic_by_seed(small_split):
    tr, va, te = small_split
    cfg = FAST["vae"]
    z1 = registry.get("vae")(**cfg).fit(tr, seed=5, val=va).encode(te.scans[0].fids[:4])
    z2 = registry.get("vae")(**cfg).fit(tr, seed=5, val=va).encode(te.scans[0].fids[:4])
    np.testing.assert_allclose(z1, z2, rtol=1e-5, atol=1e-6)


def test_vae_loss_falls_and_beats_mean_spectrum(small_split):
    tr, va, te = small_split
    g = registry.get("vae")(epochs=25, hidden=(256,), latent_dim=12).fit(tr, seed=0, val=va)
    h = g.history
    assert h[-1]["train_loss"] < 0.6 * h[0]["train_loss"]
    X = np.concatenate([g.features.transform(s.fids) for s in te.scans])
    rec = np.concatenate([g.features.transform(g.decode(g.encode(s.fids))) for s in te.scans])
    mean = np.concatenate([g.features.transform(s.fids) for s in tr.scans]).mean(0)
    assert ((rec - X) ** 2).sum() < 0.8 * ((mean - X) ** 2).sum()


def test_pca_error_falls_with_components(small_split):
    tr, _, te = small_split
    errs = []
    for k in (2, 8, 32):
        g = registry.get("pca")(n_components=k).fit(tr)
        X = np.concatenate([g.features.transform(s.fids) for s in te.scans[:2]])
        rec = np.concatenate([g.features.transform(g.decode(g.encode(s.fids))) for s in te.scans[:2]])
        errs.append(((rec - X) ** 2).sum() / (X ** 2).sum())
    assert errs[0] > errs[1] > errs[2]


def test_save_load_round_trip(fitted, small_split, tmp_path):
    cond = small_split[2].scans[0].select(np.arange(20))
    for name in ("vae", "pca"):
        g = fitted[name]
        g.save(tmp_path / name)
        h = type(g).load(tmp_path / name)
        np.testing.assert_allclose(h.encode(cond.fids), g.encode(cond.fids), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(h.sample(4, condition=cond, seed=2).fids, g.sample(4, condition=cond, seed=2).fids)


def test_latent_sampling_strategies():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((10, 3))
    for s in ("random", "interpolation", "hybrid"):
        out = LatentSampling(s, 0.5).draw(z, 50, np.random.default_rng(1))
        assert out.shape == (50, 3)
    inter = LatentSampling("interpolation").draw(z, 200, np.random.default_rng(1))
    assert np.all(inter >= z.min(0) - 1e-12) and np.all(inter <= z.max(0) + 1e-12)  # convex combinations
    with pytest.raises(ValueError):
        LatentSampling("bogus").draw(z, 2, rng)


PLUGIN = textwrap.dedent('''
    import numpy as np
    from mrsbench.generators.contract import Generator
    from mrsbench.core.scans import Scan

    class Noise(Generator):
        """white noise"""
        description = "white noise (test plugin)"
        def fit(self, train, seed=0, val=None):
            self.axis = train.axis
            return self
        def sample(self, n, *, condition=None, seed=0):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((2 * n, self.axis.n_points)) + 0j
            return Scan(x, np.tile([1, 0], n), self.axis)

    MRSBENCH_GENERATORS = {"noise-test": Noise}
''')


def test_plugin_via_path_and_module(tmp_path, small_split, monkeypatch):
    p = tmp_path / "myplug.py"
    p.write_text(PLUGIN)
    registry.load_plugins([str(p)])
    cls = registry.get("noise-test")
    assert check_generator_class(cls) == []
    g = cls().fit(small_split[0])
    validate_samples(g.sample(3, seed=0), 3, small_split[0].axis, "noise-test")
    # as a module name too, and listed with its description by the CLI
    (tmp_path / "myplugmod.py").write_text(PLUGIN.replace("noise-test", "noise-test-mod"))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "mrsbench", "list", "--plugins", "myplugmod"], capture_output=True,
                         text=True, cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert "noise-test-mod" in out.stdout and "white noise (test plugin)" in out.stdout


def test_plugin_via_entry_point(tmp_path, monkeypatch):
    (tmp_path / "epplug.py").write_text(PLUGIN)
    d = tmp_path / "epplug-0.1.dist-info"
    d.mkdir()
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: epplug\nVersion: 0.1\n")
    (d / "entry_points.txt").write_text("[mrsbench.generators]\nep-noise = epplug:Noise\nvae = epplug:Noise\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ep-noise" in registry.available()
    assert registry.get("ep-noise").__name__ == "Noise"
    # built-in names cannot be shadowed by another distribution's entry point
    assert registry.get("vae").__name__ == "VAEGenerator"
    with pytest.raises(registry.RegistryError, match="cannot be shadowed"):
        registry.register("pca", object)


def test_broken_plugin_fails_only_when_requested(tmp_path):
    bad = tmp_path / "broken_plug.py"
    bad.write_text("import definitely_not_a_module_xyz\n")
    registry.load_plugins([str(bad)])  # does not raise
    assert registry.get("pca").__name__ == "PCAGenerator"  # others still work
    with pytest.raises(registry.RegistryError, match="definitely_not_a_module_xyz"):
        registry.get("whatever-broken")
    names = dict(registry.list_generators())
    assert any("broken" in v for v in names.values())


def test_bad_samples_named_in_error(small_split):
    from mrsbench.core.scans import Scan
    ax = small_split[0].axis
    bad = Scan(np.ones((4, 2048), complex), np.array([1, 0, 1, 0]), ax)
    with pytest.raises(GeneratorError, match="'mygen'.*3 ON"):
        validate_samples(bad, 3, ax, "mygen")
    with pytest.raises(GeneratorError, match="'mygen'.*returned ndarray"):
        validate_samples(np.zeros(3), 3, ax, "mygen")


def test_check_generator_class_reports_missing():
    class Half:
        def fit(self, train, seed=0):
            return self
        def encode(self, x):
            return x
    problems = check_generator_class(Half)
    assert any("sample" in p for p in problems) and any("encode() and decode()" in p for p in problems)


def test_vae_ppm_range_and_normalisation(small_split):
    tr, va, te = small_split
    g = registry.get("vae")(epochs=2, hidden=(64,), latent_dim=4, ppm_range=(1.8, 4.2), normalisation="none").fit(tr, val=va)
    assert g.features.scale == 1.0 and g.features.mask.sum() < 2048
    out = g.sample(3, condition=te.scans[0].select(np.arange(20)), seed=0)
    validate_samples(out, 3, tr.axis, "vae")


def test_physics_prepare_batches_the_fits_and_matches_sampling_alone(small_split):
    """prepare() estimates all announced conditions in one batched LCM fit; the transients sampled afterwards
    match those of sampling without it (the fits are the same problem, float32 in another batch: within 3% of
    the band's peak over 1.8-3.6 ppm, measured up to 1.6%, from the tail of the residual-water line, a nuisance
    component that may end elsewhere; another condition's transients differ by far more), and nothing is left
    stored after sampling."""
    import numpy as np

    from mrsbench_baselines.physics import PhysicsGenerator
    train, _, test = small_split
    g = PhysicsGenerator().fit(train)
    rng = np.random.default_rng(5)
    conds = []
    for s in test.scans:
        for n in (10, 40):
            idx = np.concatenate([rng.choice(np.flatnonzero(s.edit == e), n, replace=False) for e in (0, 1)])
            conds.append(s.select(np.sort(idx)))
    alone = [g.sample(30, condition=c, seed=7) for c in conds]
    g.prepare(conds)
    assert len(g._ready) == len(conds)
    batched = [g.sample(30, condition=c, seed=7) for c in conds]
    assert not g._ready
    band = test.axis.window(1.8, 3.6)
    spec = lambda x: test.axis.to_spectrum(x.fids)[:, band]   # same seed: same noise and drift draws
    for k, (a, b) in enumerate(zip(alone, batched)):
        sa, sb = spec(a), spec(b)
        assert np.abs(sa - sb).max() <= 0.03 * np.abs(sa).max()
        assert np.array_equal(a.edit, b.edit)
        other = spec(alone[(k + 2) % len(alone)])   # another subject's estimate
        assert np.abs(other - sb).max() > 0.1 * np.abs(sa).max()


@pytest.mark.parametrize("ppm_range", [None, (0.2, 4.2)])
def test_spectral_features_equal_their_whole_array_definition(ppm_range, monkeypatch):
    """SpectralFeatures works in blocks of transients; its numbers and its column-major layout (a BLAS product
    of the features, PCA's among them, rounds differently with the other) are those of the definition on the
    whole array: scale = median over transients of max |spectrum| in the band, noise sd = 1.4826 x median of
    the per-transient MAD outside it, features = [Re, Im] of spectrum / scale, inverse = ifft(ifftshift(...))."""
    from mrsbench.generators import contract as generator
    from mrsbench.core.axis import SpectralAxis
    monkeypatch.setattr(generator, "_BLOCK", 16)
    ax = SpectralAxis()
    rng = np.random.default_rng(0)
    t = ax.time
    fids = (np.exp(2j * np.pi * ax.ppm_to_hz(2.008) * t - t / 0.1)[None] * rng.uniform(0.5, 2, (50, 1))
            + 0.01 * (rng.standard_normal((50, ax.n_points)) + 1j * rng.standard_normal((50, ax.n_points))))
    f = generator.SpectralFeatures(ax, ppm_range).fit(fids)
    s = ax.to_spectrum(fids)
    m = f.mask
    assert f.scale == float(np.median(np.abs(s[:, m]).max(1)))
    out = s[:, ~m].real
    assert f.noise_sd == (float(1.4826 * np.median(np.median(np.abs(out - np.median(out, 1, keepdims=True)), 1)))
                          if out.size else 0.0)
    X = f.transform(fids)
    ref = np.concatenate([(s[:, m] / f.scale).real, (s[:, m] / f.scale).imag], 1).astype(np.float32)
    assert np.array_equal(X, ref) and X.flags["F_CONTIGUOUS"] == ref.flags["F_CONTIGUOUS"]
    k = int(m.sum())
    spec = np.zeros((5, ax.n_points), complex)
    spec[:, m] = (X[:5, :k] + 1j * X[:5, k:]).astype(complex) * f.scale
    r = np.random.default_rng(1)
    if (~m).any():
        spec[:, ~m] = f.noise_sd * (r.standard_normal((5, (~m).sum())) + 1j * r.standard_normal((5, (~m).sum())))
    assert np.array_equal(f.inverse(X[:5], np.random.default_rng(1)), ax.to_fid(spec))

"""`flow`: a conditional flow-matching generator of single transients (Lipman et al. ICLR 2023, flow
matching; Liu et al. ICLR 2023, rectified flow: straight paths x_t = (1 - t) x0 + t x1, velocity target
x1 - x0).

What it models: one transient's spectrum (real and imaginary parts over a ppm band, like the VAE) given its
subject. The condition is the mean spectrum of the conditioning transients of the same edit condition, how
many there were (log k: a mean of 10 transients is noisier than one of 80), and the edit condition. The flow
learns the distribution of the transient's deviation from that mean, scaled by the conditioning transients' own spread (their sd about their mean; also an input): noise,
frequency/phase jitter and the part of the subject's spectrum the noisy mean gets wrong. Sampling integrates
the learned velocity field from Gaussian noise with Heun's method (``steps``; see ``STEPS_NOTE``), so the noise
of generated transients is what the model learned, not added by hand (outside the modelled band, where the
features have no signal, transients get white noise at the training level, as for the VAE and PCA).

Training conditions are means of random subsets (k from 5 to 80) of the same subject's transients of the same
edit condition, redrawn every step, so the model sees conditions as noisy as the harness gives it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mrsbench.core.scans import OFF, ON, Cohort, Scan
from mrsbench.generators.contract import EarlyStopping, Generator, SpectralFeatures

# Heun steps of the ODE sampler (2 velocity evaluations each), chosen by measurement on validation subjects
# (simgaba-small, quick fold 0, seed 0; baselines/tuning/flow_steps.py -> flow_steps.md): MMD^2 of generated vs
# real transients in the harness's feature space falls from 0.027 (1 step) to 0.0005 at 8 steps and rises
# again with more (0.002 at 16, 0.0025 at 32), while sampling slows 2x per doubling.
STEPS = 8
K_RANGE = (5, 80)   # sizes of the random conditioning subsets in training (the harness conditions on 5-80)


def _net(d: int, hidden: int, cond_dim: int, depth: int):
    import torch
    import torch.nn as nn

    class VelocityField(nn.Module):
        """v(x_t, t | mean spectrum, log k, edit): an MLP on [x_t, projected condition, time features]."""

        def __init__(self):
            super().__init__()
            self.cond = nn.Linear(d, cond_dim)
            self.freqs = nn.Parameter(torch.arange(1, 9, dtype=torch.float32) * np.pi, requires_grad=False)
            layers, w = [], d + cond_dim + 3 + 16
            for _ in range(depth):
                layers += [nn.Linear(w, hidden), nn.SiLU()]
                w = hidden
            layers.append(nn.Linear(w, d))
            # zero output at the start: v = 0 keeps x0 ~ N(0, I), i.e. the condition mean plus white noise at the
            # deviations' overall sd; training then learns the structure (a standard flow-matching initialisation)
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
            self.mlp = nn.Sequential(*layers)

        def forward(self, x, t, c, logk, edit, logsd):
            tf = t[:, None] * self.freqs[None, :]
            h = torch.cat([x, self.cond(c), logk[:, None], edit[:, None], logsd[:, None], torch.sin(tf), torch.cos(tf)], 1)
            return self.mlp(h)

    return VelocityField()


class FlowGenerator(Generator):
    """Conditional flow matching (rectified flow) of single transients, conditioned on the subject."""

    name = "flow"
    description = "conditional flow matching (rectified flow) of single transients given the subject's mean spectrum"
    link = "Lipman et al. 2023, arXiv:2210.02747; Liu et al. 2023, arXiv:2209.03003"
    resources = {"num_gpus": 1}

    def __init__(self, hidden: int = 512, depth: int = 3, cond_dim: int = 64, lr: float = 1e-3, steps_train: int = 1500,
                 batch_size: int = 256, steps: int = STEPS, ppm_range: tuple[float, float] | None = (0.5, 4.2),
                 eval_every: int = 250, patience: int = 4, max_seconds: float | None = None, device: str | None = None,
                 progress: bool = False):
        self.hidden, self.depth, self.cond_dim, self.lr = hidden, depth, cond_dim, lr
        self.steps_train, self.batch_size, self.steps, self.ppm_range = steps_train, batch_size, steps, ppm_range
        self.eval_every, self.patience, self.max_seconds = eval_every, patience, max_seconds
        self.device, self.progress = device, progress
        self.history: list[dict] = []

    def _device(self):
        import torch
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")

    # --- data ------------------------------------------------------------------------------
    def _groups(self, cohort: Cohort) -> list[np.ndarray]:
        """Feature arrays (T, D) per (subject, edit condition), edit ON first then OFF per subject."""
        out = []
        for s in cohort.scans:
            for lab in (ON, OFF):
                out.append(self.features.transform(s.fids[s.edit == lab]))
        return out

    @staticmethod
    def _spread(G: np.ndarray) -> float:
        """The condition's own noise level: sd of its transients about their mean (over all features)."""
        k = len(G)
        return float(np.std(G - G.mean(0)) * np.sqrt(k / max(k - 1, 1))) or 1e-6

    def _batch(self, groups, rng, size):
        """Transients x1 (B, D) and their conditions: the mean of k random other transients of the same subject
        and edit condition, log k, the edit condition and the log spread of those k transients."""
        g = rng.integers(0, len(groups), size)
        ks = np.exp(rng.uniform(np.log(K_RANGE[0]), np.log(K_RANGE[1]), size)).astype(int)
        x1 = np.empty((size, groups[0].shape[1]), np.float32)
        c = np.empty_like(x1)
        sd = np.empty(size, np.float32)
        for b in range(size):
            G = groups[g[b]]
            k = min(ks[b], len(G) - 1)
            idx = rng.permutation(len(G))[:k + 1]
            x1[b] = G[idx[0]]
            c[b] = G[idx[1:]].mean(0)
            sd[b] = self._spread(G[idx[1:]])
            ks[b] = k
        edit = np.array([1.0 if gi % 2 == 0 else 0.0 for gi in g], np.float32)
        return x1, c, np.log(ks).astype(np.float32), edit, np.log(sd)

    # --- fit -------------------------------------------------------------------------------
    def fit(self, train: Cohort, seed: int = 0, val: Cohort | None = None) -> "FlowGenerator":
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.axis = train.axis
        self.features = SpectralFeatures(self.axis, self.ppm_range).fit(np.concatenate([s.fids for s in train.scans]))
        groups = self._groups(train)
        # targets: the deviation from the condition mean divided by the condition's own spread (subjects and sites
        # differ in noise level by 2-3x), so the untrained flow (v = 0) already gives deviations of the right size
        vgroups = self._groups(val) if val is not None and len(val) else None
        if vgroups is not None:
            vrng = np.random.default_rng(seed + 1)
            vb = self._batch(vgroups, vrng, 1024)
            vt = vrng.uniform(0, 1, 1024).astype(np.float32)
            v0 = vrng.standard_normal(vb[0].shape).astype(np.float32)
        dev = self._device()
        D = groups[0].shape[1]
        self.model = _net(D, self.hidden, self.cond_dim, self.depth).to(dev)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.steps_train)
        T = lambda a: torch.as_tensor(a, device=dev)   # noqa: E731
        stopper, run = EarlyStopping(self.patience, 1e-5), 0.0
        t0 = time.perf_counter()
        it = range(self.steps_train)
        if self.progress:
            from tqdm import tqdm
            it = tqdm(it, desc="training flow", unit="step", leave=False)
        for step in it:
            x1, c, logk, edit, lsd = self._batch(groups, rng, self.batch_size)
            t = rng.uniform(0, 1, len(x1)).astype(np.float32)
            x0 = rng.standard_normal(x1.shape).astype(np.float32)
            loss = self._loss(T(x1), T(c), T(logk), T(edit), T(lsd), T(t), T(x0))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
            if (step + 1) % self.eval_every == 0 or step + 1 == self.steps_train:
                rec = {"step": step + 1, "train_loss": run}
                if vgroups is not None:
                    with torch.no_grad():
                        rec["val_loss"] = float(self._loss(*(T(a) for a in vb), T(vt), T(v0)))
                self.history.append(rec)
                if stopper.update(rec.get("val_loss", run), self.model):
                    break
            if self.max_seconds and time.perf_counter() - t0 > self.max_seconds:
                break
        stopper.restore(self.model)
        # unconditioned sampling: condition on a random training subject's full mean
        self.uncond_ = [(G.mean(0), len(G), self._spread(G)) for G in groups]
        return self

    def training_figure(self):
        """Training curve: flow-matching loss (running mean on training batches; fixed validation batch)."""
        import matplotlib.pyplot as plt
        h = self.history
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        ax.plot([r["step"] for r in h], [r["train_loss"] for r in h], label="train (running mean)")
        if any("val_loss" in r for r in h):
            ax.plot([r["step"] for r in h], [r.get("val_loss", np.nan) for r in h], label="validation")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("flow-matching loss (mean squared velocity error)")
        ax.set_title("flow training")
        ax.legend()
        fig.tight_layout()
        return fig

    def _loss(self, x1, c, logk, edit, logsd, t, x0):
        import torch
        target = (x1 - c) / torch.exp(logsd)[:, None]
        xt = (1 - t[:, None]) * x0 + t[:, None] * target
        v = self.model(xt, t, c, logk, edit, logsd)
        return ((v - (target - x0)) ** 2).mean()

    # --- sample ----------------------------------------------------------------------------
    def _integrate(self, c: np.ndarray, k: int, sd: float, edit: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """n transients (features, (n, D)) for one condition: mean ``c`` (D,) of k transients with spread ``sd``;
        Heun's method over ``steps``."""
        import torch
        dev = self._device()
        x = torch.as_tensor(rng.standard_normal((n, len(c))).astype(np.float32), device=dev)
        cc = torch.as_tensor(np.repeat(c[None].astype(np.float32), n, 0), device=dev)
        lk = torch.full((n,), float(np.log(max(k, 1))), device=dev)
        ed = torch.full((n,), float(edit), device=dev)
        ls = torch.full((n,), float(np.log(sd)), device=dev)
        h = 1.0 / self.steps
        with torch.no_grad():
            for i in range(self.steps):
                t = torch.full((n,), i * h, device=dev)
                v1 = self.model(x, t, cc, lk, ed, ls)
                xe = x + h * v1
                v2 = self.model(xe, t + h, cc, lk, ed, ls)
                x = x + 0.5 * h * (v1 + v2)
        return c[None] + sd * x.cpu().numpy().astype(np.float64)

    def sample(self, n: int, *, condition: Scan | None = None, seed: int = 0) -> Scan:
        rng = np.random.default_rng(seed)
        out = {}
        if condition is None:
            s = int(rng.integers(len(self.uncond_) // 2))
            conds = {ON: self.uncond_[2 * s], OFF: self.uncond_[2 * s + 1]}
        else:
            conds = {}
            for lab in (ON, OFF):
                F = self.features.transform(condition.fids[condition.edit == lab])
                conds[lab] = (F.mean(0), len(F), self._spread(F))
        for lab in (ON, OFF):
            c, k, sd = conds[lab]
            out[lab] = self.features.inverse(self._integrate(c, k, sd, 1.0 if lab == ON else 0.0, n, rng), rng)
        subj = "flow-synth" if condition is None else condition.subject + "-synth"
        return Scan.from_on_off(out[ON], out[OFF], self.axis, subject=subj,
                                site=None if condition is None else condition.site, meta={"synthetic": True})

    # --- persistence -----------------------------------------------------------------------
    def save(self, path) -> None:
        import torch
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        torch.save({"state": self.model.state_dict(), "uncond_mean": torch.as_tensor(np.stack([u[0] for u in self.uncond_])),
                    "uncond_k": torch.as_tensor([u[1] for u in self.uncond_]),
                    "uncond_sd": torch.as_tensor([u[2] for u in self.uncond_])}, p / "flow.pt")
        (p / "config.json").write_text(json.dumps({
            "hidden": self.hidden, "depth": self.depth, "cond_dim": self.cond_dim, "steps": self.steps,
            "ppm_range": self.ppm_range, "axis": self.axis.to_dict(), "scale": self.features.scale,
            "noise_sd": self.features.noise_sd}))

    @classmethod
    def load(cls, path) -> "FlowGenerator":
        import torch

        from mrsbench.core.axis import SpectralAxis
        p = Path(path)
        cfg = json.loads((p / "config.json").read_text())
        g = cls(cfg["hidden"], cfg["depth"], cfg["cond_dim"], steps=cfg["steps"],
                ppm_range=tuple(cfg["ppm_range"]) if cfg["ppm_range"] else None)
        g.axis = SpectralAxis(**cfg["axis"])
        g.features = SpectralFeatures(g.axis, g.ppm_range, cfg["scale"], cfg["noise_sd"])
        ck = torch.load(p / "flow.pt", weights_only=True, map_location=g._device())
        g.model = _net(2 * int(g.features.mask.sum()), g.hidden, g.cond_dim, g.depth).to(g._device())
        g.model.load_state_dict(ck["state"])
        g.model.eval()
        g.uncond_ = [(m.numpy().astype(np.float32), int(k), float(s))
                     for m, k, s in zip(ck["uncond_mean"], ck["uncond_k"], ck["uncond_sd"])]
        return g

"""Writing a run: results.json, figures and the MLflow run (all or nothing), and the summary table."""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from mrsbench.core.files import atomic_dir, atomic_path
from mrsbench.harness.families.quantification import QUANT
from mrsbench.harness.tracking import mlflow_log, mlflow_run
from mrsbench.metrics.copied import FLAG_THRESHOLD as COPIED_FLAG


def results_checksum(results: dict) -> str:
    """SHA-256 of the canonical JSON of a results document without its ``checksum`` (and without
    fields added after writing): lets `mrsbench validate` detect edited files."""
    import hashlib
    # "_..." keys are annotations added in memory after reading (e.g. "_source", the file a document came from)
    doc = {k: v for k, v in results.items() if k not in ("checksum", "mlflow_tracking_uri") and not k.startswith("_")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def write_run(run_dir: Path, results: dict, figures: dict, mlflow_root: Path | None = None) -> list[Path]:
    """Figures and results.json (+ the MLflow run when ``mlflow_root`` is given), all or nothing.

    Everything is written into a hidden temporary folder that is renamed to ``run_dir`` as the last
    step, inside the MLflow run: an error or interrupt (Ctrl-C, SIGTERM) leaves no run folder and
    an MLflow run marked FAILED, never a FINISHED run without its metrics."""
    renamed = False
    with (mlflow_run(results, mlflow_root) if mlflow_root is not None else nullcontext()) as ml:
        try:
            with atomic_dir(run_dir) as tmp:
                figs = _figures(tmp, results, figures)
                results["figures"] = [p.name for p in figs]
                results["checksum"] = results_checksum(results)
                with atomic_path(tmp / "results.json", ".json") as t:
                    Path(t).write_text(json.dumps(results, indent=1, sort_keys=True))
                if ml is not None:
                    mlflow_log(results, tmp, figs)
            renamed = True
        except BaseException:
            if renamed:  # interrupted between the rename and the end of the MLflow run
                import shutil
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return [run_dir / f for f in results["figures"]]


def _figures(run_dir: Path, results, figures: dict) -> list[Path]:
    """Draw each family's figures (file name -> callable(results) -> Figure) into ``run_dir``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for name, draw in figures.items():
        fig = draw(results)
        p = run_dir / name
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        out.append(p)
    return out


HEADLINE = [("reconstruction.nmse_1.8-4.2ppm", "lower"), ("embedding.precision", "higher"),
            ("embedding.recall", "higher"), ("embedding.coverage", "higher"), ("embedding.mmd2", "lower"),
            ("embedding.classifier_auc", "closer to 0.5"), ("embedding.memorisation_ratio", "closer to 1"),
            ("embedding.umap_kde_overlap", "higher"), ("application.noise_ratio", "closer to 1"),
            ("application.snr_inflation", "closer to 1"), ("application.copied_noise", "closer to 0"),
            ("application.failure_rate.augmented", "lower"),
            ("quantification.failure_rate.augmented", "lower")]


def _v(m, k, fmt=".4g"):
    v = m.get(k)
    return "n/a" if v is None else format(v, fmt)


def summary_table(results: dict) -> str:
    """Every headline metric of a run, one per row, with its direction."""
    from tabulate import tabulate
    m = results["metrics"]
    rows = []
    for n in results["preset"]["n_values"]:
        for key, d in (("effective_n", "higher"), ("gain", "higher"), ("effective_n_gaba", "higher")):
            rows.append((f"application.n{n}.{key}", _v(m, f"application.n{n}.{key}"), d))
    be = _v(m, "application.break_even_n")
    rows.append(("application.break_even_n", (">= " + be) if m.get("application.break_even_censored") else be, "higher"))
    rows += [(k, _v(m, k), d) for k, d in HEADLINE]
    for n in results["preset"]["n_values"]:
        for kind in ("subset", "augmented"):
            for key, d in (("shape_score", "higher"), ("mse", "lower"), ("snr", "not ranked (see snr_inflation)")):
                k = f"application.n{n}.{kind}.{key}"
                rows.append((k, _v(m, k), d))
    for name in QUANT:
        for kind in ("subset", "augmented"):
            k = f"quantification.{name}.mape.{kind}"
            rows.append((k, _v(m, k), "lower"))
    return tabulate(rows, headers=["metric", "value", "better"], tablefmt="github")


SHAPE_SCORE_NOTE = ("shape score: how closely the DIFF spectrum's GABA (2.8-3.2 ppm) and Glx (3.6-3.9 ppm) "
                    "regions follow the full scan's (0.6 r_GABA + 0.4 r_Glx, Pearson r; 1 = identical shape; "
                    "Edited-MRS Reconstruction Challenge)")


def _eff(m: dict, key: str, grid: list) -> str:
    """An effective-transients value with a mark where it sits at the edge of the subset-alone curve's grid."""
    v = m.get(key)
    if v is None:
        return "n/a"
    if grid and v <= min(grid) + 1e-9:
        return f"<= {min(grid)} (clipped at the real-only curve's smallest n)"
    if grid and v >= max(grid) - 1e-9:
        return f">= {max(grid)} (clipped at the real-only curve's largest n)"
    return f"~{v:.0f}"


def run_summary(results: dict, run_dir: Path | None) -> str:
    """The end of `mrsbench run`: the main question first (how many real transients is a short scan plus
    synthetic ones worth, by the spectrum's shape and by GABA+ quantification), whether augmenting harms
    quantification, then the honesty flags, then where everything is."""
    from mrsbench.harness.statistics import grid_of
    m = results["metrics"]
    model = results["model"]
    grid = grid_of(m)
    lines = [f"== {model} on {results['dataset']} ({results['preset_name']}, seed {results['seed']}) =="]
    rows = []
    for n in results["preset"]["n_values"]:
        e, g = m.get(f"application.n{n}.effective_n"), m.get(f"application.n{n}.gain")
        if e is None:
            continue
        gg = m.get(f"application.n{n}.gain_gaba")
        clip = m.get(f"application.n{n}.effective_n_clipped") or 0
        shape = (f">= {e:.0f} (beyond the curve)" if clip > 0 else f"<= {e:.0f} (below the curve)" if clip < 0
                 else _eff(m, f"application.n{n}.effective_n", grid))
        rows.append(f"  {n} real + synthetic are worth {shape} real by spectrum shape (gain {g:.2f}) and "
                    f"{_eff(m, f'application.n{n}.effective_n_gaba', grid)} by GABA+ quantification"
                    + (f" (gain {gg:.2f})" if gg is not None else "") + ".")
    if rows:
        lines.append("Filling up a short scan: effective transients = the size of a real-only scan that scores the same.")
        lines += rows
        be = m.get("application.break_even_n")
        if m.get("application.break_even_censored"):
            lines.append(f"  By shape, augmenting helps at every n tested (up to {be:.0f} real transients per condition).")
        elif be is not None and be <= min(results["preset"]["n_values"]):
            lines.append("  By shape, augmenting does not help at any n tested (gain below 1 from the smallest n).")
        elif be is not None:
            lines.append(f"  By shape, augmenting stops helping from n ~ {be:.0f} real transients per condition.")
    # quantification: does augmenting harm GABA+ (error against the full scan's own fit, per subject and subset)
    sub, aug = m.get("quantification.gaba_cr.mape.subset"), m.get("quantification.gaba_cr.mape.augmented")
    if sub is not None and aug is not None:
        bias = m.get("quantification.gaba_cr.bias.augmented")
        verdict = ("HARMS" if aug > 1.1 * sub else "helps" if aug < 0.9 * sub else "barely changes")
        lines.append(f"GABA+/tCr: augmenting {verdict} quantification: error against the full scan {sub:.1f}% with "
                     f"the real short scans alone, {aug:.1f}% augmented" + (f", bias {bias:+.1f}%" if bias is not None
                                                                          else "") + f" (mean over n = "
                     f"{', '.join(map(str, results['preset']['n_values']))}).")
    lines.append(f"({SHAPE_SCORE_NOTE}.)")
    flags = []
    if (m.get("application.noise_free") or 0) > 0:
        flags.append(f"synthetic transients are (nearly) noise-free (noise ratio {m.get('application.noise_ratio'):.3g})")
    si = m.get("application.snr_inflation")
    if si is not None and si > 1.5:
        flags.append(f"augmented SNR is {si:.3g}x what 160 real transients give: inflated, not better")
    cn = m.get("application.copied_noise")
    if cn is not None and cn > COPIED_FLAG:
        flags.append(f"the synthetic transients carry {100 * cn:.0f}% of the short scan's own noise (copied noise "
                     f"> {COPIED_FLAG:g}): they re-use the short scan rather than add information")
    for fam in ("application", "quantification"):
        fr = m.get(f"{fam}.failure_rate.augmented")
        if fr:
            flags.append(f"{100 * fr:.1f}% of augmented scans failed {fam} (left out of the means)")
    lines.append("Honesty flags: " + ("; ".join(flags) if flags else "none") + ".")
    short = results.get("short_subjects")
    if short:
        full = results["preset"].get("full_count", 160)
        lines.append(f"Short scans: {len(short)} subject(s) have fewer than the preset's full scan of {full} transients "
                     "per condition; their full-scan reference is that shorter scan (" +
                     ", ".join(f"{k}: {v[0]} ON + {v[1]} OFF" for k, v in list(short.items())[:5])
                     + (", ..." if len(short) > 5 else "") + ").")
    if run_dir is None:
        lines.append(f"Results: in memory only (nothing written). Wall time {results['wall_time_s']['total']:.0f} s.")
        return "\n".join(lines)
    lines.append(f"Results: {run_dir / 'results.json'}")
    lines.append(f"Figures: {', '.join(str(run_dir / f) for f in results.get('figures', []))}")
    if results.get("mlflow_tracking_uri"):
        lines.append(f"MLflow: mlflow ui --backend-store-uri {results['mlflow_tracking_uri']}")
    lines.append(f"Compare with others: mrsbench leaderboard --results {run_dir.parent}; a board page (index.html) "
                 f"comes with mrsbench submit or mrsbench sweep --leaderboard. Wall time {results['wall_time_s']['total']:.0f} s.")
    return "\n".join(lines)

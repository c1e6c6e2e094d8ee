"""`mrsbench report` (issue 40): the paper's Figures 4 and 5 redraw a run's own points."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mrsbench.core.errors import InputError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import mrsbench
    out = tmp_path_factory.mktemp("runs")
    res = mrsbench.evaluate("pca", preset="tiny", settings={"strategy": "interpolation"}, out=out, progress=False)
    return res.path


def test_figure5_points_are_the_runs_points(tiny_run):
    from mrsbench.boards.paper_figures import collect
    from mrsbench.metrics.twosample import kde_overlap
    doc = json.loads(tiny_run.read_text())
    data = collect([tiny_run], progress=False)
    m = data["models"]["pca[strategy=interpolation]"]
    # the recorded UMAP overlap, recomputed from the report's points: the same points, or the number differs
    assert kde_overlap(data["real"], m["umap"]) == pytest.approx(doc["metrics"]["embedding.umap_kde_overlap"],
                                                                 rel=1e-9, abs=1e-12)
    assert set(m["edit"]) == {0, 1} and set(data["real_edit"]) == {0, 1}
    subject, real, rec = m["reconstruction"][0]
    assert real.shape == rec.shape == (2, data["axis"].n_points)


def test_report_writes_both_figures_from_the_cli(tiny_run, tmp_path):
    r = subprocess.run([sys.executable, "-m", "mrsbench", "report", str(tiny_run), "--out", str(tmp_path / "figs"),
                        "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["paper_figure4_pca[strategy=interpolation].png", "paper_figure5_umap.png"]
    from PIL import Image
    w, h = Image.open(tmp_path / "figs" / "paper_figure5_umap.png").size
    assert w >= 400 and h >= 400


def test_report_refuses_results_of_different_cells(tiny_run, tmp_path):
    from mrsbench.boards.paper_figures import collect
    doc = json.loads(tiny_run.read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(doc, seed=1)))
    with pytest.raises(InputError, match="different cells"):
        collect([tiny_run, other], progress=False)

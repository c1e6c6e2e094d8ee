"""The 5-minute tour in docs/tour.md runs as written (each bash block marked `<!-- tour -->`, in order, in one
fresh folder) and produces what the page says."""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tour_blocks() -> list[str]:
    text = (ROOT / "docs" / "tour.md").read_text()
    return re.findall(r"<!-- tour -->\s*```bash\n(.*?)```", text, re.S)


def test_tour_runs_end_to_end(tmp_path):
    blocks = tour_blocks()
    assert len(blocks) == 5
    bindir = Path(sys.executable).parent
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(Path.home())}
    import os
    for k in ("MRSBENCH_CACHE", "TMPDIR", "MRSBENCH_SHARED_DIR"):
        if k in os.environ:
            env[k] = os.environ[k]
    outs = []
    for b in blocks:
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", b], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=900)
        assert p.returncode == 0, f"tour block failed:\n{b}\n{p.stderr[-2000:]}"
        outs.append(p.stdout)
    assert "generators:" in outs[0] and "bootstrap" in outs[0] and "presets" in outs[0]
    assert re.search(r"20 real \+ synthetic are worth (~|<= |>= )\d+ real by spectrum shape \(gain [\d.]+\) and .* by GABA\+ "
                     r"quantification", outs[1])
    assert re.search(r"GABA\+/tCr: augmenting (HARMS|helps|barely changes) quantification", outs[1])
    assert "Honesty flags:" in outs[1]
    board = tmp_path / "runs" / "sweep" / "simgaba-small" / "tiny"
    assert (board / "index.html").exists() and (board / "pca-seed0.json").exists()
    assert "2 computed" in outs[2]
    assert "winner" in outs[3] and "p (Holm)" in outs[3]
    assert json.loads((tmp_path / "dataset.json").read_text())

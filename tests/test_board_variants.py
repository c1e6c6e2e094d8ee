"""Boards with settings variants and a peer row (issue 40): the committed quick board carries the paper's three
sampling strategies for vae and pca and the peer augmentrum, side by side and placed, from its own numbers."""
from __future__ import annotations

from pathlib import Path

import pytest

QUICK = Path(__file__).resolve().parents[1] / "leaderboards" / "simgaba-small" / "quick"


@pytest.fixture(scope="module")
def board():
    """The committed board as written (tests/test_leaderboard.py checks it is what the results files build)."""
    import json
    return json.loads((QUICK / "leaderboard.json").read_text())


def test_strategy_rows_are_side_by_side(board):
    groups = {v["generator"]: v for v in board["variants"]}
    assert set(groups) == {"vae", "pca"}
    for base, v in groups.items():
        assert sorted(r["settings"] for r in v["rows"]) == ["strategy=hybrid (default)", "strategy=interpolation",
                                                            "strategy=random"]
        for r in v["rows"]:   # the note's numbers are the board's
            row = next(x for x in board["rows"] if x["model"] == r["model"])
            assert r["precision"] == row["embedding.precision"]["mean"]
            assert r["eff. n"] == row[f"application.n{board['middle_n']}.effective_n"]["mean"]
        assert v["sentence"].startswith(f"{base} by settings, best on each (eff. n: ")
    # measured on this board: interpolation between encoded transients trades diversity (recall) for fidelity
    # (precision) against random sampling around them, for both latent models
    for base in ("vae", "pca"):
        rows = {r["settings"]: r for r in groups[base]["rows"]}
        assert rows["strategy=interpolation"]["precision"] > rows["strategy=random"]["precision"]
        assert rows["strategy=interpolation"]["recall"] < rows["strategy=random"]["recall"]


def test_peer_row_is_placed_not_ranked(board):
    peer = next(r for r in board["rows"] if r["model"] == "augmentrum")
    assert peer["role"] == "peer" and peer["position"] is None
    # placed on the floor-to-ceiling scale, unless the strongest floor row reaches the ceiling (then no one is)
    assert (peer["bracket"] is None) == bool(board["floor_reaches_ceiling"])
    assert "Peer augmentation tool (not ranked): augmentrum" in board["verdict"]
    assert all(r["model"] != "augmentrum" for r in board["rows"] if r["role"] is None)


def test_variants_render_in_both_formats(board, tmp_path):
    from mrsbench.boards.render import render
    md = render(board, "markdown")
    assert "Settings variants of vae" in md and "| strategy=interpolation " in md
    from mrsbench.boards.render import variants_html
    assert '<div id="variants">' in variants_html(board)

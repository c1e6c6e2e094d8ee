"""Issue 21: building a board with bootstrap intervals (1000 replicates over subjects and seeds), paired
permutation tests between every pair of rows and rank stability stays interactive: the committed quick board
(14 rows x 3 seeds, 12 subjects each: 91 pairs x 16 columns x 4096 exact swaps) in a few seconds on 2 CPU cores."""
from pathlib import Path

import pytest

from mrsbench.boards.leaderboard import build, load_results

BOARD = Path(__file__).resolve().parents[2] / "leaderboards" / "simgaba-small" / "quick"


def test_bench_board_statistics(benchmark):
    docs = load_results([BOARD])
    if not any("per_subject" in d for d in docs):
        pytest.skip("committed board has no per-subject statistics")
    lb = benchmark.pedantic(build, args=(docs,), rounds=1, iterations=1)
    n_pairs = sum(len(v) for v in lb["tests"].values())
    benchmark.extra_info.update(models=len(lb["rows"]), tests=n_pairs)
    assert lb["rank_stability"]["replicates"] > 900

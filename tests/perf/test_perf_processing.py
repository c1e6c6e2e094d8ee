"""Speed target (issue: processing): the whole pipeline for one subject (320 transients x 2048
points) under 100 ms on 2 CPU cores. For scale: FSL-MRS ~1.5 s per alignment pass over 160."""
from mrsbench.datasets import load_dataset
from mrsbench.processing import process


def test_bench_process_one_subject(benchmark):
    scan = load_dataset("simgaba-small", progress=False).scans[0]
    out = benchmark(process, scan)
    assert out.on.shape == (2048,)

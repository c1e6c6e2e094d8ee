"""Helpers of the benchmark suites."""


def same_metrics(a: dict, b: dict, rtol: float = 1e-9) -> bool:
    """Metrics equal up to last-bit BLAS differences (arrays read back from the cache are aligned differently)."""
    if set(a) != set(b):
        return False
    return all((x is None and y is None) or (x is not None and y is not None and abs(x - y) <= rtol * max(1.0, abs(x)))
               for x, y in ((a[k], b[k]) for k in a))

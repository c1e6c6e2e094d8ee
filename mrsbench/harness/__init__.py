"""The fixed, versioned evaluation of one generator on one cell (dataset, preset, seed): the protocol
(``protocol``), input checks (``checks``), the model-independent work of a cell (``cell_work``) with the
subset-alone curve (``subset_curve``), the metric families (``families``), the loop (``evaluator``), per-subject
statistics (``statistics``), writing results (``outputs``), MLflow (``tracking``) and the cache (``cache``)."""

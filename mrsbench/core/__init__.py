"""The bottom layer: the data types every stage passes on (:class:`~mrsbench.core.axis.SpectralAxis`,
:class:`~mrsbench.core.scans.Scan`, :class:`~mrsbench.core.scans.Cohort`), the benchmark's spectral grid and
resampling onto it (``grid``), errors, atomic file writing (``files``), parallel maps (``parallel``) and the
clock of a command. Imports nothing else of mrsbench."""

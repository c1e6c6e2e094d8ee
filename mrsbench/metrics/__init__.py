"""Metric functions (pure): signal quality of processed spectra and two-sample statistics."""

"""Grids of cells (models x datasets x presets x seeds) run once each, locally or on Ray (``runner``), logged
to MLflow from the driver (``tracking``)."""

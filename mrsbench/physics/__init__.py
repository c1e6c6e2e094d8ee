"""Density-matrix simulation of MEGA-PRESS and the basis sets built from it."""

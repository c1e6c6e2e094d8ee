"""Quantification: batched linear-combination modelling (LCM) and Gannet-style GABA+/Glx/Cr fits."""

"""Kinetic modelling core: frame timing and decay, weights, exact basis convolutions, SRTM by
basis functions for voxels, and regional reference-tissue models for TAC tables."""

"""Clinics without neuronavigation: 10-20 positions, the Beam F3 method, depth-adjusted dose."""

"""Tests of the Django apps of `sandbox/` and the experiments that drive them."""

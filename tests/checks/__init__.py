"""Tests of the exercise checks, `sandbox.checks` (their planted answers run in tests/probes.py)."""

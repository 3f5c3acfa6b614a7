"""Tests of the notebooks' runtime, `sandbox.lab`."""

"""The embedded Django project every notebook runs against; `sandbox.lab` is the notebooks' toolkit."""

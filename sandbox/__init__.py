"""The embedded Django project every notebook runs against: its settings and one app per topic (Django code only).

Beside the apps: `sandbox.lab`, the notebooks' runtime (`from sandbox import lab`); `sandbox.checks`, the exercise
checks, which build on it; `sandbox.paths`, where the course lives on disk; `sandbox.http_client`, the one HTTP
client the async views share.
"""

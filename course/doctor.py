"""`course doctor`: what this machine has for the course, and the fix for each missing piece."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

from sandbox.lab.programs import find_postgres_bin, install_hint


@dataclass
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "installed"


def diagnose() -> list[Finding]:
    findings = []
    ok = sys.version_info >= (3, 12)
    findings.append(Finding("Python", ok, platform.python_version(),
                            "" if ok else "Django 6.1 needs Python 3.12 or newer: `uv python install 3.12`"))
    try:
        import django

        ok = django.VERSION[:2] == (6, 1)
        findings.append(Finding("Django", ok, django.get_version(),
                                "" if ok else "the course is written for Django 6.1: run `uv sync`"))
    except ImportError:
        findings.append(Finding("Django", False, "not installed", "run `uv sync` in the course folder"))
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
        findings.append(Finding("Jupyter kernel", True, f"python3 ({spec.argv[0]})"))
    except Exception as exc:
        findings.append(Finding("Jupyter kernel", False, f"no python3 kernel ({type(exc).__name__})",
                                "run `uv sync`: it installs ipykernel, which provides the python3 kernel"))
    redis = shutil.which("redis-server")
    findings.append(Finding("Redis", bool(redis), _version([redis, "--version"]).split(" sha=")[0] if redis
                            else "redis-server not found", "" if redis else
                            install_hint("redis-server", "redis", "redis-server") + "  (needed from chapter 06)",
                            required=False))
    initdb = find_postgres_bin()
    findings.append(Finding("PostgreSQL", bool(initdb), _version([initdb, "--version"]) if initdb
                            else "initdb not found", "" if initdb else
                            install_hint("postgresql", "postgresql@16", "postgresql") + "  (needed in chapter 08)",
                            required=False))
    return findings


def report(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        mark = "ok  " if f.ok else ("MISSING" if f.required else "optional, missing")
        lines.append(f"{f.name:<15} {mark:<8} {f.detail}")
        if f.fix:
            lines.append(f"{'':<15} fix: {f.fix}")
    ready = all(f.ok for f in findings if f.required)
    lines.append("ready for the course" if ready else "not ready yet: apply the fixes above")
    return "\n".join(lines)

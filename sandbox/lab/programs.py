"""Programs the runtime starts that are not Python packages (Redis, PostgreSQL): where to find them, and how a
learner installs them. `course doctor` reports the same facts."""

from __future__ import annotations

import glob
import platform
import shutil


def install_hint(debian: str, brew: str, conda: str) -> str:
    """The install command for this operating system."""
    system = platform.system()
    if system == "Darwin":
        return f"brew install {brew}"
    if system == "Linux":
        return f"sudo apt-get install {debian}  (Debian/Ubuntu; or: conda install -c conda-forge {conda})"
    return f"conda install -c conda-forge {conda}"


def find_postgres_bin(name: str = "initdb") -> str | None:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None

"""The course on JupyterHub: what the hub's configuration files in `classroom/` share.

One shared machine, many learners. Each learner gets their own copy of the course in their home folder, made once
on their first start and never overwritten (it holds their work). Their single-user server runs this checkout's
Python environment with their copy first on the import path (PYTHONPATH comes before the editable install's
entry), so their kernels import *their* `sandbox`, and write their data under *their* copy's `.course-data/`.
The hub's own files (its database, cookie secret, the proxy's pid file) go to one data folder, not to the folder
the hub happens to be started from.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from sandbox.paths import REPO

COPY_NAME = "async-django-hands-on"  # the learner's copy, in their home folder
START = "/lab/tree/notebooks/00-start-here.ipynb"
PROXY = REPO / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"  # `npm ci --prefix classroom`
# What a learner's copy leaves out: the environment, everyone's data, built files and the hub's own state.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", ".course-data", "site", "node_modules", "__pycache__",
                                    ".ipynb_checkpoints", ".mypy_cache", ".ruff_cache", "jupyterhub*")


def hub_data() -> Path:
    """The hub's own files: COURSE_HUB_DATA, or `.course-data/hub` in this checkout."""
    folder = Path(os.environ.get("COURSE_HUB_DATA", REPO / ".course-data" / "hub"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # the cookie secret and the database are the hub's alone
    return folder


def learner_home(spawner: Any) -> tuple[Path, tuple[int, int] | None]:
    """The learner's home folder and, for a system user, the (uid, gid) that must own their copy.

    SimpleLocalProcessSpawner (one Unix user for everybody) has a `home_dir` of its own; LocalProcessSpawner runs
    the server as the learner's Unix account, whose home the password database knows."""
    home = getattr(spawner, "home_dir", None)
    if home:
        return Path(home), None
    import pwd

    account = pwd.getpwnam(spawner.user.name)
    return Path(account.pw_dir), (account.pw_uid, account.pw_gid)


def copy_course(home: Path, owner: tuple[int, int] | None = None) -> Path:
    """The learner's copy of the course in `home`, made from this checkout if it is not there yet."""
    copy = home / COPY_NAME
    if not copy.exists():
        home.mkdir(parents=True, exist_ok=True)
        partial = home / f".{COPY_NAME}.partial"  # a copy cut short is never taken for a finished one
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(REPO, partial, ignore=NOT_COPIED, symlinks=True)
        if owner and os.geteuid() == 0:
            for folder, dirs, files in os.walk(partial):
                for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                    os.lchown(name, *owner)
        partial.rename(copy)
    return copy


def pre_spawn_hook(spawner: Any) -> None:
    """Before a learner's server starts: their copy of the course, and an environment that imports it."""
    home, owner = learner_home(spawner)
    copy = copy_course(home, owner)
    bin_dir = str(Path(sys.executable).parent)  # `course check` and `python` in the learner's terminal
    spawner.environment = {**spawner.environment, "PYTHONPATH": str(copy),
                           "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def configure(c: Any) -> None:
    """What every configuration of the course's hub sets (`c` is the configuration file's `get_config()`)."""
    data = hub_data()
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")
    if PROXY.exists():
        c.ConfigurableHTTPProxy.command = [str(PROXY)]
    c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]  # this checkout's environment
    c.Spawner.notebook_dir = f"~/{COPY_NAME}"
    c.Spawner.default_url = START
    c.Spawner.pre_spawn_hook = pre_spawn_hook
    # A class starts its servers at the same moment on a shared machine: JupyterLab takes longer to answer.
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 180

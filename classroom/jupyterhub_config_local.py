"""JupyterHub for trying the course's hub, and for its test: every learner runs as ONE Unix user.

    .venv/bin/jupyterhub -f classroom/jupyterhub_config_local.py

NOT for a class of people who should not see each other's work. SimpleLocalProcessSpawner runs every learner's
server as the user who started the hub, in a folder of their own (/tmp/course-hub/<name>, their HOME), and
SharedPasswordAuthenticator lets anyone who knows COURSE_HUB_PASSWORD (at least 8 characters) log in as any name.
Each learner still has their own copy of the course, data directory, kernels and servers on their own ports, but
nothing stops one learner's code from reading another's files. jupyterhub_config.py (PAM, one Unix account per
learner) is the configuration for a class.
"""

import os

from course import hub

c = get_config()  # noqa: F821 (JupyterHub's configuration loader defines it)
hub.configure(c)
c.JupyterHub.bind_url = os.environ.get("COURSE_HUB_URL", "http://127.0.0.1:8000")
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ["COURSE_HUB_PASSWORD"]
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.environ.get("COURSE_HUB_HOMES", "/tmp/course-hub") + "/{username}"
if os.geteuid() == 0:  # a container or CI machine where everything runs as root
    c.Spawner.args = ["--ServerApp.allow_root=True"]

"""JupyterHub for a class on one shared machine: learners log in with their own Unix accounts.

    sudo .venv/bin/jupyterhub -f classroom/jupyterhub_config.py

PAM checks each learner's own password and LocalProcessSpawner runs their server as their own Unix user, so the
operating system keeps learners' files, kernels and processes apart. On their first start each learner gets their
own copy of the course in their home folder (course/hub.py). See docs/instructor/jupyterhub.md.

COURSE_HUB_LEARNERS: the Unix group whose members may log in (default `learners`);
COURSE_HUB_ADMINS: comma-separated instructor accounts with the hub's admin page;
COURSE_HUB_URL: where the hub listens (default http://:8000, every interface: put TLS in front, or set
c.JupyterHub.ssl_cert and ssl_key).
"""

import os

from course import hub

c = get_config()  # noqa: F821 (JupyterHub's configuration loader defines it)
hub.configure(c)
c.JupyterHub.bind_url = os.environ.get("COURSE_HUB_URL", "http://:8000")
c.JupyterHub.authenticator_class = "pam"
c.JupyterHub.spawner_class = "localprocess"
c.LocalAuthenticator.allowed_groups = {os.environ.get("COURSE_HUB_LEARNERS", "learners")}
c.Authenticator.admin_users = {name for name in os.environ.get("COURSE_HUB_ADMINS", "").split(",") if name}

"""Server settings for chapter 08's DATABASES exercise: the sandbox's, with the default database replaced by the
learner's entry, passed as JSON in CONSIDERATIONS_DATABASE (the check starts a real server with it)."""

from __future__ import annotations

import json
import os

from sandbox.settings_server import *  # noqa: F403
from sandbox.settings_server import DATABASES

if os.environ.get("CONSIDERATIONS_DATABASE"):
    DATABASES = {**DATABASES, "default": json.loads(os.environ["CONSIDERATIONS_DATABASE"])}

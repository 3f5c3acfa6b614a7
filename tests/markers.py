"""Skip markers for tests that need a program a learner's machine may lack. CI sets COURSE_REQUIRE_REAL_SERVICES,
under which none of them skips: the test runs, and fails if the program is missing."""

from __future__ import annotations

import shutil

import pytest

from sandbox.lab import postgres, services

CHROMIUM = shutil.which("chromium")

needs_redis = pytest.mark.skipif(not services.shutil.which("redis-server") and not services.require_real(),
                                 reason="needs redis-server (CI installs it and never skips this)")
needs_postgres = pytest.mark.skipif(not postgres.find_postgres_bin("initdb") and not postgres.require_real(),
                                    reason="needs PostgreSQL (CI installs it and never skips this)")
needs_chromium = pytest.mark.skipif(not CHROMIUM and not services.require_real(),
                                    reason="needs Debian's chromium (apt-get install chromium); CI installs it and "
                                           "never skips this")

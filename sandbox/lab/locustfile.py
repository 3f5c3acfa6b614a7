"""The locust scenario behind `lab.locust`: every simulated user GETs one path, again and again, with no pause.

Read by `python -m locust -f`; the path comes from COURSE_LOAD_PATH. FastHttpUser (geventhttpclient) is
locust's faster client, so that on a small machine the generator is less often the bottleneck.
"""

import os

from locust import FastHttpUser, constant, task


class Visitor(FastHttpUser):
    wait_time = constant(0)

    @task
    def visit(self) -> None:
        self.client.get(os.environ["COURSE_LOAD_PATH"], name="path")

"""Production command lines for the servers chapter 08 compares, with what each is good at.

`tests/sandbox/test_considerations.py` runs every line against the sandbox (`for_sandbox`: the sandbox's module,
loopback, a free port, two workers) and checks that it serves, so the lines printed in the notebook are known to
work with the versions installed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    server: str
    line: str
    good_at: str
    needs: str = ""  # an extra package the line needs, beyond the course's environment


COMMANDS = [
    Command("daphne", "daphne -b 0.0.0.0 -p 8000 myproject.asgi:application",
            "Channels' own server (HTTP and WebSockets); with \"daphne\" in INSTALLED_APPS, runserver is ASGI. One "
            "process, no --workers: run several under a process manager or behind a load balancer"),
    Command("uvicorn", "uvicorn myproject.asgi:application --host 0.0.0.0 --port 8000 --workers 4",
            "small and fast (uvloop and httptools when installed: uvicorn[standard]); --workers runs several "
            "processes"),
    Command("gunicorn + uvicorn", "gunicorn myproject.asgi:application -k uvicorn_worker.UvicornWorker -w 4 "
            "-b 0.0.0.0:8000",
            "what Django's docs give for production Uvicorn: gunicorn's process management (restarts, "
            "timeouts, graceful reloads) with uvicorn workers", needs="uvicorn-worker"),
    Command("hypercorn", "hypercorn myproject.asgi:application -b 0.0.0.0:8000 -w 4",
            "HTTP/1 and HTTP/2, HTTP/3 with its h3 extra; asyncio, uvloop or trio workers"),
    Command("granian", "granian myproject.asgi:application --interface asgi --host 0.0.0.0 --port 8000 "
            "--workers 4",
            "written in Rust (hyper): HTTP/2, static files, ASGI and WSGI in one server. Django does not speak "
            "ASGI's lifespan protocol: `--interface asginl` skips it without a warning"),
    Command("gunicorn (WSGI)", "gunicorn myproject.wsgi:application -b 0.0.0.0:8000 -w 4 -k gthread --threads 8",
            "the WSGI baseline: mature and simple; concurrency = workers x threads, one thread per request in "
            "flight, no WebSockets"),
]


def for_sandbox(command: Command, port: int, workers: int = 2) -> str:
    """The line, pointed at the sandbox on loopback with `workers` processes."""
    line = command.line.replace("myproject.", "sandbox.").replace("0.0.0.0", "127.0.0.1").replace("8000", str(port))
    return line.replace("--workers 4", f"--workers {workers}").replace("-w 4", f"-w {workers}")


def table() -> str:
    width = max(len(c.server) for c in COMMANDS)
    rows = []
    for c in COMMANDS:
        rows.append(f"{c.server:<{width}}  {c.line}")
        rows.append(f"{'':<{width}}    {c.good_at}" + (f" (needs: pip install {c.needs})" if c.needs else ""))
    return "\n".join(rows)

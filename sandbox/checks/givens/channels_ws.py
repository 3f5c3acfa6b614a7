"""Chapter 06's givens: the profile service and its two clients, for exercise 'greet-on-connect'."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field

PALETTE = ["amber", "blue", "coral", "green", "violet", "teal", "crimson", "indigo", "olive", "saffron"]


@dataclass
class ProfileService:
    """The profile service: its colours are drawn for each run, and it records every lookup."""

    colours: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (name, "async" or "sync", thread)
    in_flight: int = 0
    max_in_flight: int = 0

    def reset(self, colours: dict[str, str]) -> None:
        self.colours, self.calls, self.in_flight, self.max_in_flight = dict(colours), [], 0, 0

    def start(self, name: str, kind: str) -> None:
        self.calls.append((name, kind, threading.current_thread().name))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def profile(self, name: str) -> dict:
        if name not in self.colours:
            self.colours[name] = random.choice(PALETTE)
        return {"name": name, "colour": self.colours[name]}


profiles = ProfileService()  # the check resets it for each run and reads what it recorded


async def fetch_profile(name: str) -> dict:
    """The profile service's async client: an answer after 0.5 s, without blocking the event loop."""
    profiles.start(name, "async")
    try:
        await asyncio.sleep(0.5)
        return profiles.profile(name)
    finally:
        profiles.in_flight -= 1


def fetch_profile_sync(name: str) -> dict:
    """The same service's sync client: it blocks its thread for 0.5 s."""
    profiles.start(name, "sync")
    try:
        time.sleep(0.5)
        return profiles.profile(name)
    finally:
        profiles.in_flight -= 1

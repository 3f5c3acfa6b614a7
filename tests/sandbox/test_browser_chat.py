"""The chat in a real browser: Debian's Chromium, driven by Playwright, against a real daphne.

Two pages, two users: alice logs in through the login form, bob arrives with a session cookie. Alice types a
message; it must appear on bob's page. Without chromium the test is skipped, except under
COURSE_REQUIRE_REAL_SERVICES=1 (CI), where it must run. It never downloads a browser (`playwright install` is
not used): it launches the system's Chromium by path.
"""

from __future__ import annotations

import pytest

from tests.markers import CHROMIUM, needs_chromium

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "a-local-test-password"  # a throwaway user in the test's own database

pytestmark = [pytest.mark.slow, needs_chromium]


async def _user_with_password(username: str) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User

    user, _ = await User.objects.aget_or_create(username=username)
    await sync_to_async(user.set_password)(PASSWORD)  # hashing is slow CPU work: keep it off the event loop
    await user.asave()


async def test_a_message_typed_in_one_browser_page_appears_in_the_other(lab):
    from playwright.async_api import async_playwright

    from sandbox.lab.experiments.chat_clients import login_cookie

    assert CHROMIUM, "chromium is not installed (CI must install it: apt-get install chromium)"

    await _user_with_password("alice-browser")
    bob_cookie = (await login_cookie("bob-browser")).split("=", 1)[1]
    server = await lab.start_server("daphne", quiet=True)
    room = f"{server.url}/chat/browsers/"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
            try:
                alice = await (await browser.new_context()).new_page()
                await alice.goto(room)  # anonymous: redirected to the login form
                assert "/chat/login/" in alice.url
                await alice.fill("#id_username", "alice-browser")
                await alice.fill("#id_password", PASSWORD)
                await alice.click("button[type=submit]")
                await alice.wait_for_url(room)
                await alice.locator("#status", has_text="connected").wait_for(timeout=10_000)

                bob_context = await browser.new_context()
                await bob_context.add_cookies([{"name": "sessionid", "value": bob_cookie, "url": server.url}])
                bob = await bob_context.new_page()
                await bob.goto(room)
                await bob.locator("#status", has_text="connected").wait_for(timeout=10_000)
                await alice.locator("#who", has_text="bob-browser").wait_for(timeout=10_000)

                await alice.fill("#text", "Hello from Chromium")
                await alice.press("#text", "Enter")
                await bob.locator("#log li", has_text="alice-browser: Hello from Chromium").wait_for(timeout=10_000)
                bob_sees, alice_input = await bob.locator("#log li").all_inner_texts(), await alice.input_value("#text")
            finally:
                await browser.close()
    finally:
        server.stop()

    assert "alice-browser: Hello from Chromium" in bob_sees
    assert alice_input == "", "the page clears its input after sending"

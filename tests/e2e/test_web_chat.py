"""The web chat page in headless Chromium: type, watch the reply stream in, stop it, chat on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from llm_deeper.models.tiny import save_tiny_model

    # A long context so a reply can run for seconds (the stop button needs time to act).
    folder = save_tiny_model(tmp_path_factory.mktemp("tiny-web"), arch="llama", context=8192)
    engine = Engine.load(str(folder), max_batch=2)
    # Pace decoding (10 ms a step) so a 6000-token reply is still running when the test
    # clicks Stop: unpaced, a tiny model can finish it between the check and the click.
    decode = engine.runner.decode

    def paced_decode(*args, **kwargs):
        time.sleep(0.01)
        return decode(*args, **kwargs)

    engine.runner.decode = paced_decode
    with BackgroundServer(create_app(engine)) as srv:
        srv.engine = engine
        yield srv
    engine.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page()
        page.goto(server.url + "/")
        yield page
        browser.close()


def reply_length(page) -> int:
    return page.evaluate("() => { const m = [...document.querySelectorAll('.msg.assistant .text')].pop(); return m ? m.textContent.length : -1; }")


def test_models_are_listed(page, server):
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    assert page.locator("#model option").first.get_attribute("value") == server.engine.name


def test_streamed_reply_then_stop(page, server):
    # A short reply: it streams in, then the page shows usage and tokens/s.
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "24")
    page.fill("#input", "Hello there")
    page.click("#send")
    page.wait_for_selector(".msg.assistant[data-finish]", timeout=20000)
    meta = page.locator(".msg.assistant .meta").last.inner_text()
    assert "finish: length" in meta and "completion 24 tokens" in meta and "tokens/s" in meta
    assert reply_length(page) == 24  # the tiny model's greedy reply is 24 one-byte tokens
    assert page.locator(".msg.user").first.inner_text() == "Hello there"

    # A long reply: text grows while we watch, then Stop ends it and frees the engine.
    page.fill("#max-tokens", "6000")
    page.fill("#input", "Tell me more")
    page.press("#input", "Enter")
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 2")
    page.wait_for_function("() => [...document.querySelectorAll('.msg.assistant .text')].pop().textContent.length > 5", timeout=20000)
    first = reply_length(page)
    page.wait_for_function(f"() => [...document.querySelectorAll('.msg.assistant .text')].pop().textContent.length > {first}", timeout=20000)
    assert page.locator("#stop").is_enabled()
    page.click("#stop")
    page.wait_for_selector(".msg.assistant[data-finish='stopped']", timeout=10000)
    assert page.locator("#send").is_enabled() and not page.locator("#stop").is_enabled()
    deadline = time.monotonic() + 5
    while server.engine.stats()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.engine.stats()["running"] == 0, "stopping in the page cancels the generation"
    assert reply_length(page) < 6000

    # The conversation goes on after a stop.
    page.fill("#max-tokens", "5")
    page.fill("#input", "Again")
    page.click("#send")
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant[data-finish]').length === 3", timeout=20000)
    assert "finish: length" in page.locator(".msg.assistant .meta").last.inner_text()

"""The speedrun's HTML report card opens in headless Chromium with its plots shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_deeper.speedrun.core import Context, Outcome, Stage, StageResult
from llm_deeper.speedrun.report_html import write_html_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")


def test_report_card_shows_its_plots_in_a_browser(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from playwright.sync_api import sync_playwright

    plots = []
    for name in ("tinygpt", "finetune"):
        plt.figure(figsize=(4, 3))
        plt.plot([3, 2.5, 2, 1.8])
        plots.append(tmp_path / f"{name}.png")
        plt.savefig(plots[-1])
        plt.close()
    stage = lambda key, title: Stage(key, title, lambda ctx: None)  # noqa: E731
    outcomes = [
        Outcome(stage("40_tinygpt", "TinyGPT from scratch"), StageResult("val loss 6.2 → 4.1", {"loss curve": str(plots[0])}), 90.0),
        Outcome(stage("50_finetune", "LoRA fine-tune"), StageResult("right tool 0% → 85%", {"loss curve": str(plots[1]), "train tokens/s": 375.0}), 400.0, reused=True),
    ]
    ctx = Context(quick=False, model="smollm2-135m-instruct", run_dir=tmp_path)
    page_file = write_html_report(ctx, outcomes, tmp_path / "report.html")
    for plot in plots:
        plot.unlink()  # the page must not need the PNG files next to it

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        widths = page.evaluate("() => [...document.images].map(img => img.complete ? img.naturalWidth : 0)")
        summary = page.inner_text("table")
        title = page.title()
        browser.close()
    assert widths == [400, 400]  # both plots decoded (4 in × 100 dpi)
    assert "TinyGPT from scratch" in summary and "(reused)" in summary
    assert title == "LLM Deeper speedrun report card"

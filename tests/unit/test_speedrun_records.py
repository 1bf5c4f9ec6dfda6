"""A rerun in the same folder skips finished stages; --fresh, a new seed or edited stage or library code run them again;
the HTML report card embeds the stages' plots."""

from __future__ import annotations

import base64
from pathlib import Path

from llm_deeper.speedrun.core import Context, Stage, StageResult, run_stages, write_report
from llm_deeper.speedrun.report_html import render_html, write_html_report


class Calls:
    def __init__(self):
        self.ran: list[str] = []


def make_stages(calls: Calls, plot: Path | None = None) -> list[Stage]:
    def load(ctx):  # leaves an in-memory object, like the stage that loads the model
        calls.ran.append("load")
        ctx.state["loaded"] = object()
        return StageResult("loaded")

    def train(ctx):
        calls.ran.append("train")
        assert "loaded" in ctx.state
        ctx.state["adapter_dir"] = ctx.run_dir / "adapter"
        metrics = {"train tokens/s": 123.4}
        if plot:
            metrics["loss curve"] = str(plot)
        return StageResult("trained", metrics, details="- a bullet\n\n```\ncode\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |")

    def serve(ctx):
        calls.ran.append("serve")
        return StageResult(f"served {ctx.state['adapter_dir'].name}")

    return [Stage("10_load", "Load", load, "s1"), Stage("50_train", "Train", train, "s2"), Stage("70_serve", "Serve", serve, "s3")]


def run(tmp_path, calls, seed=0, fresh=False, stages=None):
    ctx = Context(quick=True, model="tiny", run_dir=tmp_path, seed=seed, log=lambda _: None)
    return ctx, run_stages(ctx, stages or make_stages(calls), lambda s: None, lambda o: None, fresh=fresh)


def test_a_rerun_skips_finished_stages_but_reloads_in_memory_state(tmp_path):
    calls = Calls()
    run(tmp_path, calls)
    assert calls.ran == ["load", "train", "serve"]
    calls.ran.clear()
    ctx, outcomes = run(tmp_path, calls)
    assert calls.ran == ["load"]  # the loader always runs; the others come from their records
    assert [o.reused for o in outcomes] == [False, True, True]
    assert ctx.state["adapter_dir"] == tmp_path / "adapter" and isinstance(ctx.state["adapter_dir"], Path)
    assert outcomes[1].result.metrics == {"train tokens/s": 123.4}
    report = write_report(ctx, outcomes, tmp_path / "report.md").read_text()
    assert "| Train | ok (reused) |" in report and "--fresh" in report


def test_fresh_seed_and_code_changes_run_stages_again(tmp_path):
    calls = Calls()
    run(tmp_path, calls)
    calls.ran.clear()
    run(tmp_path, calls, fresh=True)
    assert calls.ran == ["load", "train", "serve"]
    calls.ran.clear()
    run(tmp_path, calls, seed=1)
    assert calls.ran == ["load", "train", "serve"]
    calls.ran.clear()
    stages = make_stages(calls)
    stages[1].source = "edited"  # an edited stage runs again, and so does every stage after it
    run(tmp_path, calls, seed=1, stages=stages)
    assert calls.ran == ["load", "train", "serve"]


def test_edited_library_code_runs_stages_again(tmp_path, monkeypatch):
    from llm_deeper.speedrun import core

    calls = Calls()
    run(tmp_path, calls)
    calls.ran.clear()
    run(tmp_path, calls)
    assert calls.ran == ["load"]  # same code: reused
    calls.ran.clear()
    monkeypatch.setattr(core, "library_digest", lambda: "after a git pull")
    run(tmp_path, calls)
    assert calls.ran == ["load", "train", "serve"]


def test_a_failed_stage_leaves_no_record(tmp_path):
    calls = Calls()
    stages = make_stages(calls)
    stages[2].run = lambda ctx: (_ for _ in ()).throw(RuntimeError("boom"))
    _, outcomes = run(tmp_path, calls, stages=stages)
    assert not outcomes[-1].ok and not (tmp_path / "stages" / "70_serve.json").exists()
    assert (tmp_path / "stages" / "50_train.json").exists()


def test_html_report_card_embeds_plots_and_renders_details(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot = tmp_path / "loss.png"
    plt.plot([3, 2, 1])
    plt.savefig(plot)
    plt.close()
    calls = Calls()
    ctx, outcomes = run(tmp_path / "run", calls, stages=make_stages(calls, plot))
    page = render_html(ctx, outcomes)
    assert "data:image/png;base64," + base64.b64encode(plot.read_bytes()).decode() in page
    assert "<pre>code</pre>" in page and "<li>a bullet</li>" in page and "<td>1</td>" in page
    assert "123.4" in page.split("<h2>Speed</h2>")[1]  # the speed table collects tokens/s figures
    assert "src=\"http" not in page and "<script" not in page  # self-contained
    written = write_html_report(ctx, outcomes, tmp_path / "report.html")
    assert written.read_text().startswith("<!doctype html>") and not list(tmp_path.glob("*.tmp"))

"""The stage runner stops at the first failure and still writes a full report."""

from llm_deeper.speedrun.core import Context, Stage, StageResult, run_stages, write_report


def test_failure_stops_the_run_and_is_reported(tmp_path):
    calls = []

    def good(ctx):
        calls.append("good")
        ctx.state["value"] = 41
        return StageResult(headline="fine", metrics={"answer": ctx.state["value"] + 1})

    def bad(ctx):
        calls.append("bad")
        raise RuntimeError("stage broke")

    def never(ctx):
        calls.append("never")
        return StageResult(headline="unreachable")

    stages = [Stage("10_good", "Good", good), Stage("20_bad", "Bad", bad), Stage("30_never", "Never", never)]
    ctx = Context(quick=True, model="m", run_dir=tmp_path)
    outcomes = run_stages(ctx, stages, lambda s: None, lambda o: None)
    assert calls == ["good", "bad"]
    assert [o.ok for o in outcomes] == [True, False]
    report = write_report(ctx, outcomes, tmp_path / "report.md").read_text()
    assert "| Good | ok |" in report and "| Bad | FAILED |" in report
    assert "- answer: 42" in report
    assert "RuntimeError: stage broke" in report


def test_a_failed_check_is_a_failure(tmp_path):
    stages = [Stage("10_check", "Check", lambda ctx: StageResult(headline="wrong answer", ok=False))]
    outcomes = run_stages(Context(quick=True, model="m", run_dir=tmp_path), stages, lambda s: None, lambda o: None)
    assert not outcomes[0].ok

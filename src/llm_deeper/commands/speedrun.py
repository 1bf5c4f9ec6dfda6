"""`llm-deeper speedrun`: the main job, every stage end to end, with a report."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import MODEL_OPTION, QUICK_OPTION


def speedrun(
    quick: bool = QUICK_OPTION,
    model: str = MODEL_OPTION,
    only: str = typer.Option(None, "--stages", help="Comma-separated words; run only stages whose name contains one."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the run (default: $LLM_DEEPER_HOME/runs/speedrun-full, or -quick)."),
    seed: int = typer.Option(0, "--seed", help="Seed for every random choice."),
    fresh: bool = typer.Option(False, "--fresh", help="Run every stage again, even those an earlier run in the folder finished."),
    list_stages: bool = typer.Option(False, "--list", help="List the stages and exit."),
) -> None:
    """Run the whole pipeline stage by stage and write a report (Markdown and HTML); a rerun skips
    the stages that already finished. Example: llm-deeper speedrun --quick"""
    from rich.console import Console
    from rich.table import Table

    from ..errors import UserError
    from ..paths import artifact_dir
    from ..speedrun.core import Context, discover, run_stages, write_report
    from ..speedrun.report_html import write_html_report

    console = Console()
    if out is not None:
        from ..inputs import check_output_dir

        check_output_dir(out, "--out")
    if not list_stages:
        from ..models.registry import resolve

        resolve(model)  # a bad --model is one line now, not a failed stage minutes later
    stages = discover([w.strip() for w in only.split(",") if w.strip()] if only else None)
    if list_stages or not stages:
        for stage in stages:
            console.print(f"{stage.key}  {stage.title}")
        if not stages:
            console.print(f"[red]no stage matches {only!r}[/]")
            raise typer.Exit(2)
        return
    run_dir = out or artifact_dir("runs") / f"speedrun-{'quick' if quick else 'full'}"
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file; give a folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=quick, model=model, run_dir=run_dir, seed=seed, log=lambda line: console.print(f"    [dim]{line}[/]"))
    console.rule(f"LLM Deeper speedrun ({'quick' if quick else 'full'}) — {len(stages)} stages")

    def on_start(stage) -> None:
        console.print(f"[bold]▶ {stage.title}[/]")

    def on_end(outcome) -> None:
        mark = "[green]✓[/]" if outcome.ok else "[red]✗[/]"
        text = outcome.result.headline if outcome.result else outcome.error.strip().splitlines()[-1]
        if outcome.reused:
            console.print(f"[bold]▶ {outcome.stage.title}[/] [dim](finished in an earlier run; --fresh reruns it)[/]")
        console.print(f"  {mark} {text} [dim]({outcome.seconds:.1f} s)[/]")

    outcomes = run_stages(ctx, stages, on_start, on_end, fresh=fresh)
    report = write_report(ctx, outcomes, run_dir / "report.md")
    html = write_html_report(ctx, outcomes, run_dir / "report.html")

    table = Table(title="Speedrun summary")
    for column in ("stage", "result", "time", "headline"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        headline = o.result.headline if o.result else o.error.strip().splitlines()[-1]
        status = ("[green]ok[/]" + (" [dim](reused)[/]" if o.reused else "")) if o.ok else "[red]FAILED[/]"
        table.add_row(o.stage.title, status, f"{o.seconds:.1f} s", headline)
    console.print(table)
    console.print(f"report: {report}\nreport card (open in a browser): {html}")
    skipped = len(stages) - len(outcomes)
    if not all(o.ok for o in outcomes):
        console.print("[red]speedrun failed[/]" + (f" ({skipped} later stages not run)" if skipped else ""))
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("speedrun")(speedrun)

"""`llm-deeper lessons {list,run}`."""

from __future__ import annotations

import typer

from ..cli_options import QUICK_OPTION

lessons_app = typer.Typer(help="List and run the lessons of the learning path. Example: llm-deeper lessons run basics/03", no_args_is_help=True)


@lessons_app.command("list")
def list_lessons() -> None:
    """Every lesson, in order, with its title, how long it takes and its last result. Example: llm-deeper lessons list"""
    from rich.console import Console
    from rich.table import Table

    from ..lessons import all_lessons, load_status, status_text

    table = Table(title="Learning path")
    for column in ("lesson", "file", "what you learn", "takes", "last run"):
        table.add_column(column)
    status = load_status()
    for lesson in all_lessons():
        table.add_row(lesson.key, str(lesson.path.name), lesson.title, lesson.duration, status_text(status.get(lesson.key)))
    Console().print(table)


@lessons_app.command("run")
def run_lessons(
    key: str = typer.Argument(..., help="'all', a week (basics, hfcore, inferencing_and_advanced), 'basics/03' or '03'."),
    quick: bool = QUICK_OPTION,
) -> None:
    """Run one lesson, a week, or all of them. Example: llm-deeper lessons run 03"""
    from rich.console import Console

    from ..lessons import run, select

    console = Console()
    results = []
    for lesson in select(key):
        console.rule(f"{lesson.key} — {lesson.title}")
        code, seconds = run(lesson, quick=quick)
        results.append((lesson, code, seconds))
    failed = [r for r in results if r[1] != 0]
    for lesson, code, seconds in results:
        mark = "[green]✓[/]" if code == 0 else f"[red]✗ exit {code}[/]"
        console.print(f"{mark} {lesson.key} ({seconds:.1f} s)")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(lessons_app, name="lessons")

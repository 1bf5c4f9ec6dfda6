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


@lessons_app.command("exercise")
def exercise(
    key: str = typer.Argument("", help="'basics/1' (week/number); leave out to list every exercise."),
    solution: bool = typer.Option(False, "--solution", help="Show our solution and check it."),
    attempt: str = typer.Option("", "--try", help="A Python file defining `solve`: check yours."),
) -> None:
    """Exercises with checked solutions: the task, your attempt checked, or ours. Example: llm-deeper lessons exercise basics/1 --try mine.py"""
    from rich.console import Console
    from rich.table import Table

    from ..exercises import all_exercises, find, load_module, run_check
    from ..exercises import solution as our_solution

    if not key:
        table = Table(title="Exercises (llm-deeper lessons exercise KEY)")
        for column in ("exercise", "after lesson", "task"):
            table.add_column(column)
        for item in all_exercises():
            table.add_row(item.key, item.lesson, item.title)
        Console().print(table)
        return
    item = find(key)
    print(f"{item.key} (after lesson {item.lesson}): {(item.task().__doc__ or '').strip()}\n\n    {item.task().SIGNATURE}\n")
    if attempt:
        from pathlib import Path

        yours = load_module(Path(attempt).resolve(), "your_solution")
        if not hasattr(yours, "solve"):
            raise typer.BadParameter(f"{attempt} defines no `solve` function", param_hint="--try")
        run_check(item, yours.solve)
        print("All checks passed.")
    elif solution:
        print(f"Our solution ({item.solution_path.relative_to(item.task_path.parents[3])}):\n")
        print(item.solution_path.read_text(encoding="utf-8"))
        run_check(item, our_solution(item))
        print("All checks passed.")
    else:
        print(f"Write `solve` in a file, then: llm-deeper lessons exercise {item.key} --try FILE   (ours: --solution)")


@lessons_app.command("figures")
def figures(
    names: list[str] = typer.Argument(None, help="Pictures to draw (default: all)."),
    check_only: bool = typer.Option(False, "--check", help="Only list the pictures whose sources changed since they were drawn."),
) -> None:
    """Draw the course's pictures into docs/figures from the project's code (about a minute). Example: llm-deeper lessons figures"""
    from ..errors import UserError
    from ..figures import PICTURES, draw_all, figures_dir, stale

    if check_only:
        old = stale()
        print("every picture is current" if not old else "stale: " + ", ".join(old) + "  (run: llm-deeper lessons figures)")
        raise typer.Exit(1 if old else 0)
    unknown = sorted(set(names or []) - {p.name for p in PICTURES})
    if unknown:
        raise UserError(f"no picture {unknown[0]!r}; the pictures: {', '.join(p.name for p in PICTURES)}")
    for name, size in draw_all(names or None).items():
        print(f"  → wrote {figures_dir() / name}.png ({size / 1024:.1f} KB)")


def register(app: typer.Typer) -> None:
    app.add_typer(lessons_app, name="lessons")

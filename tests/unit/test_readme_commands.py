"""Every shell command in a fenced block of the README, the docs and the lesson READMEs still works.

Each `llm-deeper` command (also under `torchrun -m llm_deeper`) is parsed by the real CLI, so a
renamed command or flag, a missing argument or a bad value fails here and not in a reader's
terminal; the cheap ones also run for real in a scratch folder. `make` targets must exist in the
Makefile and `python src/...` lessons must exist (tests/lessons/ runs the lessons themselves).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

try:  # recent typer vendors click as typer._click; older ones use click itself
    from typer._click.exceptions import UsageError
except ImportError:
    from click.exceptions import UsageError

from conftest import REPO, run_cli
from llm_deeper.cli import app, register_commands

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "src").glob("*/README.md"))]
FENCE = re.compile(r"```(?:bash|sh|shell|console)?\n(.*?)```", re.S)
# Commands that take seconds and touch nothing outside the scratch folder: run them for real.
RUN_FOR_REAL = {("lessons", "list"), ("tools", "list"), ("tools", "call"), ("data", "make-tools"), ("calc",), ("models", "list"),
                ("speedrun", "--list")}


def shell_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) for every command line in every fenced shell block."""
    found = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.splitlines():
                try:
                    words = shlex.split(line, comments=True)
                except ValueError:  # not shell (a diagram, a formula)
                    continue
                commands, current = [], []
                for word in words + ["&&"]:
                    if word in {"&&", ";", "||"}:
                        commands.append(current)
                        current = []
                    else:
                        current.append(word)
                for argv in commands:
                    ours = argv[:1] in (["llm-deeper"], ["make"], ["torchrun"]) or (
                        argv[:1] == ["python"] and any(w.startswith("src/") or w == "llm_deeper" for w in argv))
                    if ours:
                        found.append((page.name, argv))
    return found


COMMANDS = shell_commands()


def cli_args(argv: list[str]) -> list[str] | None:
    """The llm-deeper arguments of a command line, or None when it is not an llm-deeper command."""
    if argv[0] == "llm-deeper":
        return argv[1:]
    if "-m" in argv and argv[argv.index("-m") + 1] in {"llm_deeper", "llm_deeper.cli"}:
        return argv[argv.index("-m") + 2:]
    return None


def parse(args: list[str]):
    """Parse like the real CLI does (options, arguments, value checks) without running the command."""
    command, ctx, name = typer.main.get_command(app), None, "llm-deeper"
    while True:
        ctx = command.make_context(name, list(args), parent=ctx)
        if not hasattr(command, "resolve_command"):  # a command, not a group
            return ctx
        rest = [*ctx._protected_args, *ctx.args]
        assert rest, f"{name} needs a subcommand"
        name, command, args = command.resolve_command(ctx, rest)


def test_the_pages_have_commands():
    assert len([c for c in COMMANDS if cli_args(c[1]) is not None]) >= 10
    assert any(c[1][:2] == ["make", "run"] for c in COMMANDS) and any(c[1][:2] == ["make", "test"] for c in COMMANDS)


def test_parse_catches_a_renamed_flag():
    register_commands()
    with pytest.raises(UsageError):
        parse(["finetune", "--method", "lora", "--data", "x.jsonl", "--no-such-flag"])
    with pytest.raises(UsageError):
        parse(["no-such-command"])


@pytest.mark.parametrize("page, argv", COMMANDS, ids=[f"{p}: {' '.join(a)[:60]}" for p, a in COMMANDS])
def test_command_is_valid(page, argv, tmp_path):
    register_commands()
    args = cli_args(argv)
    if argv[0] == "make":
        targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))
        assert argv[1] in targets, f"{page}: make {argv[1]} is not a Makefile target"
    elif args is None:
        script = next(w for w in argv[1:] if w.endswith(".py"))
        assert (REPO / script).is_file(), f"{page}: {script} does not exist"
    else:
        try:
            parse(args)
        except typer.Exit:  # --help, --list and other eager flags end parsing on purpose
            pass
        except UsageError as exc:
            pytest.fail(f"{page}: `{' '.join(argv)}` no longer parses: {exc.format_message()}")
        if any(tuple(args[:len(key)]) == key for key in RUN_FOR_REAL):
            result = run_cli(*args, timeout=120, env={"LLM_DEEPER_HOME": str(tmp_path / "home")}, cwd=tmp_path)
            assert result.returncode == 0, f"{page}: `{' '.join(argv)}` failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}"

"""Issue 18, defects 6-8: every CLI command answers bad input with one line and exit code 2, before any work.

The commands are discovered from the typer app, so a new command is walked
too. Each gets an unknown flag, each numeric flag a value below its minimum,
and each path-like parameter (by name: data files, output folders, input
folders, a log file, a server URL, a model) a bad path: a binary file, a
folder where a file belongs, a file where a folder belongs, a missing path,
an unreachable server. The heavy entry points (model and tokenizer loads,
the engine, training, the speedrun, subprocesses, the server) are replaced by
a tripwire: a check that comes after work has started fails the test instead
of running for minutes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import typer

from llm_deeper import cli
from llm_deeper.errors import UserError


class WorkStarted(Exception):
    """Raised by a tripwire: the command began real work before refusing its input."""


def tripwire(name: str, resolve_first: bool = False):
    def trip(*args, **kwargs):
        if resolve_first:  # a bad model is found by resolving it, which loads nothing
            from llm_deeper.models.registry import resolve

            value = args[1] if args and not isinstance(args[0], (str, Path)) and len(args) > 1 else (args[0] if args else kwargs.get("model"))
            if isinstance(value, (str, Path)):
                resolve(value)
        raise WorkStarted(name)
    return trip


@pytest.fixture
def no_work(monkeypatch):
    import llm_deeper.chat_repl
    import llm_deeper.finetune.loop
    import llm_deeper.inference.engine
    import llm_deeper.models.loaders
    import llm_deeper.speedrun.core
    import llm_deeper.train.tinygpt.pretrain
    import llm_deeper.train.tinygpt.text
    import uvicorn

    monkeypatch.setattr(llm_deeper.models.loaders, "load_model", tripwire("load_model", True))
    monkeypatch.setattr(llm_deeper.models.loaders, "load_tokenizer", tripwire("load_tokenizer", True))
    monkeypatch.setattr(llm_deeper.inference.engine.Engine, "load", classmethod(lambda cls, model="x", *a, **k: tripwire("Engine.load", True)(model)))
    monkeypatch.setattr(llm_deeper.chat_repl, "run_chat", tripwire("run_chat", True))
    monkeypatch.setattr(llm_deeper.finetune.loop, "train", tripwire("finetune"))
    monkeypatch.setattr(llm_deeper.train.tinygpt.pretrain, "train", tripwire("tinygpt train"))
    monkeypatch.setattr(llm_deeper.train.tinygpt.text, "prepare", tripwire("tinygpt corpus"))
    monkeypatch.setattr(llm_deeper.speedrun.core, "run_stages", tripwire("speedrun"))
    monkeypatch.setattr(uvicorn, "run", tripwire("uvicorn"))
    monkeypatch.setattr(subprocess, "Popen", tripwire("subprocess"))


def leaf_commands():
    """(path, click command) for every command of the app, groups that run on their own included."""
    cli.register_commands()
    root = typer.main.get_command(cli.app)

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            yield path, command
            return
        if getattr(command, "invoke_without_command", False):
            yield path, command
        for name, sub in sorted(subcommands.items()):
            yield from walk(sub, [*path, name])

    return list(walk(root, []))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad-input")
    good = base / "good.jsonl"
    good.write_text('{"prompt": "hi", "completion": "hello"}\n', encoding="utf-8")
    binary = base / "binary.jsonl"
    binary.write_bytes(bytes(range(256)) * 8)
    folder = base / "a-folder"
    folder.mkdir()
    (folder / "train.jsonl").write_text(good.read_text(), encoding="utf-8")
    existing = base / "existing-file"
    existing.write_text("I am a file\n")
    return {"good": good, "binary": binary, "folder": folder, "file": existing, "missing": base / "no" / "such", "base": base}


# Parameter name -> role; what each role gets as bad values is in bad_values().
ROLES = {
    "data": "data", "eval_data": "data", "text": "data", "path": "data",
    "output": "out", "out": "out",
    "adapter": "in_dir", "run": "in_dir",
    "log": "out_file", "base_url": "url", "lora": "lora", "model": "model",
}


def bad_values(role: str, files: dict[str, Path]) -> list[str]:
    return {
        "data": [files["binary"], files["folder"], files["missing"]],
        "out": [files["file"], files["file"] / "below"],
        "in_dir": [files["file"], files["missing"]],
        "out_file": [files["folder"]],
        "url": ["http://127.0.0.1:1/v1"],
        "lora": [f"tools={files['missing']}", f"tools={files['file']}"],
        "model": [files["missing"], files["file"]],
    }[role]


def filler(param, files: dict[str, Path]) -> str:
    """A harmless value for a required parameter that is not under test."""
    role = ROLES.get(param.name)
    if role == "data":
        return str(files["good"])
    if role == "out":
        return str(files["base"] / "fresh-output")
    if role == "in_dir":
        return str(files["folder"])
    if role == "url":
        return "http://127.0.0.1:1/v1"
    return {"name": "calculator", "question": "hi", "prompt": "hi", "key": "no-such-lesson", "runs": str(files["folder"])}.get(param.name, "x")


def invocations(files: dict[str, Path]):
    """(command path, argv, text the error line must contain or None) for each bad input."""
    for path, command in leaf_commands():
        # Required parameters, and --data (eval needs it without click knowing), get harmless values.
        needed = [p for p in command.params if getattr(p, "required", False) or p.name == "data"]
        yield path, [*path, "--no-such-flag"], "--no-such-flag"
        for param in command.params:
            flag = param.opts[0] if param.param_type_name == "option" else None
            cases: list[tuple[str, str | None]] = []
            if param.param_type_name == "option" and getattr(param, "min", None) is not None and not getattr(param, "is_flag", False):
                cases.append((str(param.min - 1), flag))
            if param.name in ROLES:
                cases += [(str(v), Path(str(v).split("=")[-1]).name) for v in bad_values(ROLES[param.name], files)]
            for value, expect in cases:
                argv, fillers = list(path), []
                for other in command.params:  # in declaration order, so positional arguments land in place
                    if other is param:
                        argv += [flag, value] if flag else [value]
                    elif other in needed:
                        fillers.append(ROLES.get(other.name))
                        given = filler(other, files)
                        argv += [given] if other.param_type_name == "argument" else [other.opts[0], given]
                # A filler refused first (a folder that is no adapter, an unreachable server) may be named instead.
                yield path, argv, expect if not {"in_dir", "url"} & set(fillers) else None


def run_cli_in_process(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.run(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


def test_every_command_refuses_bad_input_in_one_line_before_any_work(files, no_work, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at the terminal width: one logical line must stay one line
    seen, failures = set(), []
    for path, argv, expect in invocations(files):
        seen.add(" ".join(path))
        try:
            code, err = run_cli_in_process(argv, capsys)
        except WorkStarted as started:
            failures.append(f"{' '.join(argv)}: started {started} before refusing its input")
            continue
        except (Exception, UserError) as exc:  # noqa: BLE001 - any escape is the defect under test
            failures.append(f"{' '.join(argv)}: raised {type(exc).__name__}: {exc}")
            continue
        lines = [line for line in err.splitlines() if line.strip()]
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error:"):
            failures.append(f"{' '.join(argv)}: exit {code}, stderr {err!r}")
        elif expect is not None and expect not in lines[0]:
            failures.append(f"{' '.join(argv)}: the message does not name {expect}: {lines[0]}")
    assert not failures, "\n".join(failures)
    assert {"finetune", "agent", "eval", "data inspect", "tinygpt train", "tinygpt export", "tools conformance"} <= seen


def test_data_errors_say_what_is_wrong(files, no_work, capsys):
    cases = [
        (["finetune", "--data", str(files["folder"]), "--output", str(files["base"] / "o")], "is a folder, not a file"),
        (["finetune", "--data", str(files["binary"]), "--output", str(files["base"] / "o")], "pass a UTF-8 JSONL or text file"),
        (["finetune", "--data", str(files["good"]), "--output", str(files["file"])], "is a file, not a folder"),
        (["eval", "--data", str(files["binary"])], "pass a UTF-8 JSONL or text file"),
        (["data", "inspect", str(files["binary"])], "pass a UTF-8 JSONL or text file"),
        (["tinygpt", "train", "--out", str(files["file"])], "is a file, not a folder"),
        (["tinygpt", "export", str(files["folder"]), "--out", str(files["file"])], "is a file, not a folder"),
        (["agent", "hi", "--log", str(files["folder"])], "is a folder, not a file"),
        (["tools", "conformance", "--base-url", "http://127.0.0.1:1/v1"], "cannot reach http://127.0.0.1:1/v1"),
    ]
    for argv, message in cases:
        code, err = run_cli_in_process(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_a_huge_line_fails_at_once_naming_the_limit(files, no_work, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_DEEPER_MAX_LINE_BYTES", "4096")
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"prompt": "' + "x" * 100_000 + '", "completion": "y"}\n', encoding="utf-8")
    for argv in (["finetune", "--data", str(huge), "--output", str(tmp_path / "o")], ["eval", "--data", str(huge)], ["data", "inspect", str(huge)]):
        code, err = run_cli_in_process(argv, capsys)
        assert code == 2 and f"{huge}:1" in err and "longer than 4,096 bytes" in err and "LLM_DEEPER_MAX_LINE_BYTES" in err, err
    monkeypatch.delenv("LLM_DEEPER_MAX_LINE_BYTES")
    # The default limit, and the library reader under it (fine-tuning reads through it too): a 9 MiB line.
    from llm_deeper.data.sft import read_jsonl

    huge.write_text('{"prompt": "hi", "completion": "ok"}\n' + '{"prompt": "' + "x" * (9 << 20) + '", "completion": "y"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"huge.jsonl:2: the line is longer than 8 MiB"):
        read_jsonl(huge)


def test_quick_keeps_explicit_flags(monkeypatch, capsys, tmp_path):
    from llm_deeper.commands import tinygpt

    seen = {}

    def fake_prepare(text, tokenizer, vocab_size, context, max_chars=None):
        seen.update(vocab_size=vocab_size, context=context)
        raise WorkStarted("prepare")

    import llm_deeper.train.tinygpt.text

    monkeypatch.setattr(llm_deeper.train.tinygpt.text, "prepare", fake_prepare)
    with pytest.raises(WorkStarted):
        cli.run(["tinygpt", "train", "--quick", "--out", str(tmp_path / "run"), "--context", "96"])
    assert seen == {"vocab_size": tinygpt.QUICK_SETTINGS["vocab_size"], "context": 96}  # --quick's vocab, the user's context
    command = typer.main.get_command(tinygpt.tinygpt_app).commands["train"]
    ctx = command.make_context("train", ["--quick", "--checkpoint-every", "1", "--steps", "7"])
    chosen = tinygpt.quick_defaults(ctx, {k: ctx.params[k] for k in tinygpt.QUICK_SETTINGS})
    assert chosen["checkpoint_every"] == 1 and chosen["steps"] == 7 and chosen["layers"] == tinygpt.QUICK_SETTINGS["layers"]

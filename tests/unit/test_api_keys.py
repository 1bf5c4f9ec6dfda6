"""Issue 26 §3: keys are never empty, never on a command line, never someone else's."""

from __future__ import annotations

import shlex

import pytest
import typer

from conftest import run_cli
from llm_deeper.deploy import env as vllm_env
from llm_deeper.deploy.launch import VllmConfig, build_command
from llm_deeper.errors import UserError
from llm_deeper.serve.auth import checked_api_key


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_key_is_refused_before_serving(empty):
    with pytest.raises(UserError, match="--api-key is empty"):
        checked_api_key(empty)
    assert checked_api_key(None) is None and checked_api_key("k1") == "k1"


def test_serve_with_an_empty_key_is_one_line_and_loads_nothing():
    done = run_cli("serve", "--api-key", "", "--model", "no-such-model", timeout=60)
    assert done.returncode == 2 and "--api-key is empty" in done.stderr and "Traceback" not in done.stderr


def test_vllm_gets_the_key_from_its_environment_not_its_command_line(tmp_path):
    argv, variables = build_command(VllmConfig(model="m", served_name="m", api_key="s3cret", device="cpu"), "python", tmp_path, 8000, None, None)
    assert "--api-key" not in argv and not any("s3cret" in arg for arg in argv)  # `ps` shows argv to every local user
    assert variables["VLLM_API_KEY"] == "s3cret"


def test_deploy_dry_run_does_not_print_the_key(tiny_llama_dir, tmp_path):
    done = run_cli("deploy", "vllm", "--model", str(tiny_llama_dir), "--max-model-len", "64",
                   env={vllm_env.ENV_VAR: str(tmp_path / "no-env"), "LLM_DEEPER_API_KEY": "s3cret"})
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert "s3cret" not in done.stdout + done.stderr and 'VLLM_API_KEY="$LLM_DEEPER_API_KEY"' in line
    assert "--api-key" not in shlex.split(line)


@pytest.mark.parametrize("path", [("agent",), ("tools", "conformance"), ("eval",), ("eval", "bfcl"), ("eval", "agent")])
def test_client_commands_read_the_projects_key_variable_not_openais(path):
    from llm_deeper.cli import app, register_commands

    register_commands()
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name] if hasattr(command, "commands") else command
    option = next(p for p in command.params if "--api-key" in p.opts)
    assert option.envvar == "LLM_DEEPER_API_KEY"  # OPENAI_API_KEY would go to whatever --base-url names

"""The CLI through a real subprocess: help, models, generate, chat, and clean errors."""

import re

import pytest

from conftest import run_cli


def assert_clean_error(result, fragment):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert fragment in result.stderr


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("models", "chat", "generate", "speedrun", "lessons"):
        assert re.search(rf"\b{command}\b", result.stdout), command


def test_every_command_help_has_an_example():
    for args in (["models", "--help"], ["models", "info", "--help"], ["generate", "--help"], ["chat", "--help"], ["speedrun", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0, args
        assert "Example" in result.stdout, args


def test_models_list_shows_the_default():
    result = run_cli("models", "list")
    assert result.returncode == 0
    assert "smollm2-135m" in result.stdout and "(default)" in result.stdout


def test_models_info_on_a_folder(tiny_llama_dir):
    result = run_cli("models", "info", str(tiny_llama_dir))
    assert result.returncode == 0, result.stderr
    assert "LlamaForCausalLM" in result.stdout
    assert "90,624" in result.stdout  # exact count of the tiny Llama, tied embeddings once


def test_generate_streams_from_a_folder(tiny_llama_dir):
    result = run_cli("generate", "-m", str(tiny_llama_dir), "-p", "hello", "-n", "5", "-t", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n")


def test_generate_is_reproducible_with_a_seed(tiny_llama_dir):
    args = ("generate", "-m", str(tiny_llama_dir), "-p", "hello", "-n", "12", "-t", "1.0", "--seed", "7")
    assert run_cli(*args).stdout == run_cli(*args).stdout


def test_unknown_model_is_one_line():
    result = run_cli("generate", "-m", "nosuch-model", "-p", "hi")
    assert_clean_error(result, "unknown model 'nosuch-model'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_file_is_one_line():
    result = run_cli("models", "info", "./does/not/exist.gguf")
    assert_clean_error(result, "no such file or folder")


def test_negative_tokens_are_rejected():
    result = run_cli("generate", "-p", "hi", "-n", "-3")
    assert_clean_error(result, "--max-new-tokens")


def test_prepare_rejects_a_path(tiny_llama_dir):
    result = run_cli("models", "prepare", str(tiny_llama_dir))
    assert_clean_error(result, "only embedded models need preparing")


def test_chat_is_multi_turn_with_reset_and_eof(tiny_llama_dir):
    result = run_cli("chat", "-m", str(tiny_llama_dir), "-n", "3", "-t", "0", input="first\n/reset\n/bogus\nsecond\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("bot> ") == 2
    assert "conversation cleared" in result.stderr
    assert "unknown command /bogus" in result.stderr


@pytest.mark.slow
def test_prepare_converts_into_the_home_folder_with_progress(prepare_in_fresh_home):
    """A fresh home: the first `prepare` converts, the second finds the cache (run once per session, see conftest)."""
    run = prepare_in_fresh_home
    assert run.first.returncode == 0, run.first.stderr
    folder = run.home / "models" / "smollm2-135m-instruct"
    assert (folder / "model.safetensors").is_file() and (folder / "llm_deeper_conversion.json").is_file()
    assert run.models_listing == ["smollm2-135m-instruct"]  # no temp folder left
    assert "already prepared" in run.second.stdout

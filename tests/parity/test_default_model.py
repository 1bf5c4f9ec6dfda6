"""The embedded default model: conversion, a known answer (parity with the GGUF: the speedrun test, stage 30)."""

import json

import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.sampling import SamplingConfig

pytestmark = pytest.mark.slow


def test_greedy_answer_names_paris(default_model):
    with Engine(default_model, max_batch=1) as engine:
        reply = engine.generate([{"role": "user", "content": "What is the capital of France?"}], SamplingConfig(max_new_tokens=20)).text
    assert "Paris" in reply


def test_config_is_readable_by_every_consumer(default_model):
    config = json.loads((default_model.folder / "config.json").read_text())
    # mlx-lm and other readers look for a top-level rope_theta; 10000 would be wrong.
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 100000.0
    assert "quantization_config" not in config
    assert config["num_key_value_heads"] == 3 and config["tie_word_embeddings"] is True
    assert (default_model.folder / "chat_template.jinja").is_file() or "chat_template" in json.loads((default_model.folder / "tokenizer_config.json").read_text())


def test_exact_parameter_count(default_model):
    from llm_deeper.models.inspect import count_parameters

    assert count_parameters(default_model.model) == 134_515_008


def test_models_info_and_generate_cli_on_the_default_model():
    from conftest import run_cli

    info = run_cli("models", "info", "smollm2-135m-instruct")
    assert info.returncode == 0, info.stderr
    assert "134,515,008" in info.stdout and "8192" in info.stdout
    answer = run_cli("generate", "-p", "What is the capital of France?", "-t", "0", "-n", "20")
    assert answer.returncode == 0 and "Paris" in answer.stdout

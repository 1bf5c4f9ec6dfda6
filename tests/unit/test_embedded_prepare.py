"""Preparing a model is atomic: a failed conversion leaves no folder that looks complete."""

from dataclasses import replace

import pytest

from llm_deeper.models import embedded
from llm_deeper.models.registry import DEFAULT_MODEL, REGISTRY


def test_interrupted_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path))
    spec = replace(REGISTRY[DEFAULT_MODEL], name="broken-model")
    monkeypatch.setattr(embedded, "gguf_path", lambda s: tmp_path / "fake.gguf")
    (tmp_path / "fake.gguf").write_bytes(b"not really")

    def explode(source, out_dir, progress):
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "convert_gguf_folder", explode)
    with pytest.raises(KeyboardInterrupt):
        embedded.prepare(spec)
    assert not embedded.is_prepared(spec)
    assert list((tmp_path / "models").iterdir()) == []


def test_outdated_marker_triggers_a_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path))
    spec = replace(REGISTRY[DEFAULT_MODEL], name="old-model")
    folder = embedded.cached_folder(spec)
    folder.mkdir(parents=True)
    (folder / embedded.MARKER).write_text('{"version": 0}')
    assert not embedded.is_prepared(spec)
    (folder / embedded.MARKER).write_text("{broken json")
    assert not embedded.is_prepared(spec)


def test_portable_config_repeats_rope_theta(tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps({"rope_parameters": {"rope_theta": 5e5, "rope_type": "default"}, "quantization_config": {"x": 1}}))
    embedded.write_portable_config(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["rope_theta"] == 5e5 and "quantization_config" not in config and "rope_scaling" not in config

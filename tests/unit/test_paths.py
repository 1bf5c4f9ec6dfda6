"""Artifacts go to $LLM_DEEPER_HOME, else the user's cache folder, never the repo."""

from pathlib import Path

from llm_deeper import paths


def test_env_variable_overrides_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path / "base"))
    assert paths.home() == tmp_path / "base"
    sub = paths.artifact_dir("runs", "x")
    assert sub == tmp_path / "base" / "runs" / "x" and sub.is_dir()


def test_default_home_is_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("LLM_DEEPER_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.home() == tmp_path / "cache" / "llm-deeper"


def test_repo_root_is_the_checkout():
    root = paths.repo_root()
    assert root is not None and (root / "src" / "llm_deeper").is_dir()
    assert Path(__file__).resolve().is_relative_to(root)

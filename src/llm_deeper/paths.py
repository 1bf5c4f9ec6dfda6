"""Where artifacts live: outside the repo, in one base folder a variable overrides."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LLM_DEEPER_HOME"


def home() -> Path:
    """Base folder for converted models, checkpoints, runs and caches.

    `$LLM_DEEPER_HOME` wins; otherwise the user's cache folder
    (`~/.cache/llm-deeper` on Linux, `~/Library/Caches/llm-deeper` on macOS).
    """
    override = os.environ.get(HOME_ENV)
    if override:
        base = Path(override).expanduser()
    else:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("llm-deeper", appauthor=False))
    base.mkdir(parents=True, exist_ok=True)
    return base


def artifact_dir(*parts: str) -> Path:
    """A sub-folder of the base folder, created on first use."""
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root() -> Path | None:
    """The source checkout this package runs from (editable install), if any.

    Lessons live beside the library in `src/`, not inside the package, so
    commands that run lessons need the checkout.
    """
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() and (root / "src" / "basics").is_dir() else None

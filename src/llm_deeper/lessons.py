"""Find and run the lessons of the learning path (src/basics, src/hfcore, ...)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .paths import repo_root

WEEKS = ["basics", "hfcore", "inferencing_and_advanced"]


@dataclass(frozen=True)
class Lesson:
    """One runnable lesson script."""

    week: str  # folder under src/
    number: str  # two-digit prefix, e.g. "03"
    path: Path  # the script

    @property
    def key(self) -> str:
        """What `lessons run` accepts: 'basics/03' (or '03' when unique)."""
        return f"{self.week}/{self.number}"

    @property
    def title(self) -> str:
        """First line of the module docstring, or the file name."""
        import ast

        doc = ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8"))) or ""
        return doc.strip().splitlines()[0] if doc.strip() else self.path.stem


def all_lessons() -> list[Lesson]:
    """Every lesson in learning-path order."""
    root = repo_root()
    if root is None:
        raise UserError("lessons live in the source checkout (src/basics, ...): clone the repository and install it with `pip install -e .`")
    found = []
    for week in WEEKS:
        for path in sorted((root / "src" / week).glob("[0-9][0-9]_*.py")):
            found.append(Lesson(week=week, number=path.name[:2], path=path))
    return found


def select(key: str) -> list[Lesson]:
    """Lessons matching 'all', a week name, 'week/NN' or 'NN'."""
    lessons = all_lessons()
    if key == "all":
        return lessons
    if key in WEEKS:
        return [l for l in lessons if l.week == key]
    picked = [l for l in lessons if key in (l.key, l.number, l.path.stem, f"{l.week}/{l.path.stem}")]
    if not picked:
        raise UserError(f"no lesson {key!r}: see `llm-deeper lessons list` (use 'all', a week, 'basics/03' or '03')")
    return picked


def run(lesson: Lesson, quick: bool = False, extra_env: dict | None = None) -> tuple[int, float]:
    """Run one lesson as a script, output streaming through; (exit code, seconds)."""
    env = dict(os.environ, **(extra_env or {}))
    if quick:
        env["LLM_DEEPER_QUICK"] = "1"
    start = time.perf_counter()
    code = subprocess.call([sys.executable, str(lesson.path)], env=env, cwd=lesson.path.parent)
    return code, time.perf_counter() - start

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

# The learning path's order inside a week, where it differs from the file numbers. The file names
# are the seed's file index (docs and tests cite them), but week 3 teaches inference → tools →
# deployment, so its MLX lessons (01, 02: adapters for mlx-lm) come after the server and tool calling.
PATH_ORDER = {"inferencing_and_advanced": ["00", "06", "03", "04", "05", "01", "02", "07"]}


@dataclass(frozen=True)
class Lesson:
    """One runnable lesson script."""

    week: str  # folder under src/
    number: str  # two-digit prefix, e.g. "03"
    path: Path  # the script

    @property
    def key(self) -> str:
        """What `lessons run` accepts: 'basics/03' (a bare '03' means the first week's lesson 03)."""
        return f"{self.week}/{self.number}"

    @property
    def docstring(self) -> str:
        import ast

        return ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8"))) or ""

    @property
    def title(self) -> str:
        """First line of the module docstring, or the file name."""
        doc = self.docstring.strip()
        return doc.splitlines()[0] if doc else self.path.stem

    @property
    def duration(self) -> str:
        """How long it takes in its default mode, from the docstring's 'Time:' or 'Takes:' line
        (up to the first bracket or semicolon), e.g. 'about 5 s on 2 CPU cores'."""
        import re

        match = re.search(r"^(?:Time|Takes):?\s*(.+?)\s*(?:[(;]|\.?$)", self.docstring, re.M)
        return match.group(1) if match else ""


def all_lessons() -> list[Lesson]:
    """Every lesson in learning-path order."""
    root = repo_root()
    if root is None:
        raise UserError("lessons live in the source checkout (src/basics, ...): clone the repository and install it with `pip install -e .`")
    found = []
    for week in WEEKS:
        order = PATH_ORDER.get(week, [])
        paths = sorted((root / "src" / week).glob("[0-9][0-9]_*.py"))
        paths.sort(key=lambda p: order.index(p.name[:2]) if p.name[:2] in order else len(order))  # stable: the rest by number
        found.extend(Lesson(week=week, number=path.name[:2], path=path) for path in paths)
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
    if key.isdigit():  # a bare number names one lesson: the first week that has it ('03' = basics/03)
        return picked[:1]
    return picked


def run(lesson: Lesson, quick: bool = False, extra_env: dict | None = None) -> tuple[int, float]:
    """Run one lesson as a script, output streaming through; (exit code, seconds)."""
    env = dict(os.environ, **(extra_env or {}))
    if quick:
        env["LLM_DEEPER_QUICK"] = "1"
    start = time.perf_counter()
    code = subprocess.call([sys.executable, str(lesson.path)], env=env, cwd=lesson.path.parent)
    seconds = time.perf_counter() - start
    record_status(lesson, code, seconds, quick)
    return code, seconds


STATUS_FILE = "status.json"  # last result of each lesson, under the artifact base folder


def _status_path() -> Path:
    from .paths import artifact_dir

    return artifact_dir("lessons") / STATUS_FILE


def load_status() -> dict:
    """{lesson key: {"exit": code, "seconds": s, "quick": bool}} of each lesson's last run."""
    import json

    try:
        return json.loads(_status_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record_status(lesson: Lesson, code: int, seconds: float, quick: bool) -> None:
    """Remember a run's result for `lessons list` (written whole, then renamed: never half a file)."""
    import json

    status = load_status()
    status[lesson.key] = {"exit": code, "seconds": round(seconds, 1), "quick": quick}
    path = _status_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def status_text(entry: dict | None) -> str:
    """'✓ 3.2 s', '✗ exit 1' or 'not run' for the list table."""
    if not entry:
        return "not run"
    quick = " (quick)" if entry.get("quick") else ""
    return f"✓ {entry['seconds']} s{quick}" if entry["exit"] == 0 else f"✗ exit {entry['exit']}"

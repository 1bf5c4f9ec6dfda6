"""Exercises with checked solutions, one small task after a lesson.

Each exercise is two files under the week's folder:
  src/<week>/exercises/NN_name.py            the task (module docstring), `LESSON`, `SIGNATURE`,
                                              and `check(solve)`, which asserts claims about a `solve`
  src/<week>/exercises/solutions/NN_name.py  our `solve`, shown only on request

`llm-deeper lessons exercise basics/1` prints the task; `--try FILE` checks your `solve`;
`--solution` prints ours and checks it. A lesson's closing line names its exercises.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .errors import UserError
from .lessons import WEEKS
from .paths import repo_root


@dataclass(frozen=True)
class Exercise:
    """One exercise: its task file and its solution file."""

    week: str  # folder under src/
    number: int  # 1, 2, 3 … within the week
    task_path: Path  # src/<week>/exercises/NN_name.py

    @property
    def key(self) -> str:
        """What `lessons exercise` accepts: 'basics/1'."""
        return f"{self.week}/{self.number}"

    @property
    def solution_path(self) -> Path:
        return self.task_path.parent / "solutions" / self.task_path.name

    def task(self) -> ModuleType:
        return load_module(self.task_path, f"exercise_{self.week}_{self.number}")

    @property
    def title(self) -> str:
        doc = (self.task().__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.task_path.stem

    @property
    def lesson(self) -> str:
        """The lesson it follows, e.g. 'basics/02'."""
        return self.task().LESSON


def load_module(path: Path, name: str) -> ModuleType:
    """Import a file as a module (exercise files are not a package)."""
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_exercises() -> list[Exercise]:
    """Every exercise, week by week, in number order."""
    root = repo_root()
    if root is None:
        raise UserError("exercises live in the source checkout (src/basics/exercises, ...): clone the repository")
    return [Exercise(week, int(path.name[:2]), path)
            for week in WEEKS for path in sorted((root / "src" / week / "exercises").glob("[0-9][0-9]_*.py"))]


def find(key: str) -> Exercise:
    """The exercise named 'week/N'."""
    for exercise in all_exercises():
        if key in (exercise.key, f"{exercise.week}/{exercise.number:02d}"):
            return exercise
    raise UserError(f"no exercise {key!r}: see `llm-deeper lessons exercise` (keys look like 'basics/1')")


def for_lesson(lesson_key: str) -> list[Exercise]:
    """The exercises that follow one lesson ('basics/02')."""
    try:
        return [e for e in all_exercises() if e.lesson == lesson_key]
    except UserError:
        return []


def run_check(exercise: Exercise, solve) -> None:
    """Assert every claim of the exercise about `solve` (a failed claim exits non-zero, saying which)."""
    exercise.task().check(solve)


def solution(exercise: Exercise):
    """Our `solve` for the exercise."""
    return load_module(exercise.solution_path, f"solution_{exercise.week}_{exercise.number}").solve

"""Each week's README lists every lesson of its folder with the time its docstring gives."""

import pytest

from llm_deeper.lessons import WEEKS, all_lessons
from conftest import REPO


@pytest.mark.parametrize("week", WEEKS)
def test_week_readme_lists_every_lesson_with_its_time(week):
    readme = (REPO / "src" / week / "README.md").read_text(encoding="utf-8")
    lessons = [l for l in all_lessons() if l.week == week]
    assert lessons
    for lesson in lessons:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{lesson.path.name}`")), None)
        assert row is not None, f"src/{week}/README.md has no row for {lesson.path.name}"
        assert lesson.duration, f"{lesson.path.name}'s docstring has no 'Time:' or 'Takes:' line"
        assert row.rstrip().endswith(f"| {lesson.duration} |"), f"{lesson.path.name}: README says {row.split('|')[-2].strip()!r}, the lesson {lesson.duration!r}"

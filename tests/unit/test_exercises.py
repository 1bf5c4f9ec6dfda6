"""Exercises: each week has at least three, each follows a real lesson, our solution passes its
checks, a wrong answer fails them, and the CLI hides the solution until asked."""

from __future__ import annotations

import pytest
from conftest import run_cli

from llm_deeper.exercises import all_exercises, run_check, solution
from llm_deeper.lessons import WEEKS, all_lessons

EXERCISES = all_exercises()


def test_every_week_has_at_least_three_exercises_after_real_lessons():
    lessons = {l.key for l in all_lessons()}
    for week in WEEKS:
        assert len([e for e in EXERCISES if e.week == week]) >= 3, week
    for exercise in EXERCISES:
        assert exercise.lesson in lessons and exercise.lesson.startswith(exercise.week), exercise.key
        assert exercise.solution_path.is_file(), exercise.key


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_our_solution_passes_every_check(exercise, capsys):
    run_check(exercise, solution(exercise))
    out = capsys.readouterr().out
    assert out.count("✓") >= 3 and "✗" not in out


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_a_wrong_answer_fails_the_checks(exercise):
    def wrong(*args, **kwargs):
        """Our answer, slightly off: a check that cannot fail would pass this."""
        answer = solution(exercise)(*args, **kwargs)
        if isinstance(answer, tuple) and isinstance(answer[1], list):  # (content, calls): drop the last call
            return answer[0], answer[1][:-1]
        if isinstance(answer, tuple):
            return tuple(x * 1.01 for x in answer)
        return answer * 1.01 + 1e-3

    with pytest.raises((SystemExit, Exception)):
        run_check(exercise, wrong)


def test_the_cli_hides_the_solution_until_asked(tmp_path):
    task = run_cli("lessons", "exercise", "basics/1")
    assert task.returncode == 0, task.stderr
    assert "def solve(logits: np.ndarray, temperature: float)" in task.stdout and "--solution" in task.stdout
    assert "np.exp(shifted)" not in task.stdout  # the solution's body
    mine = tmp_path / "mine.py"
    mine.write_text("import numpy as np\ndef solve(logits, temperature):\n    e = np.exp(logits / temperature)\n    return e / e.sum(-1, keepdims=True)\n")
    tried = run_cli("lessons", "exercise", "basics/1", "--try", str(mine))  # the naive softmax overflows
    assert tried.returncode != 0 and "claim failed: logits in the thousands" in tried.stderr
    shown = run_cli("lessons", "exercise", "basics/1", "--solution")
    assert shown.returncode == 0 and "np.exp(shifted)" in shown.stdout and "All checks passed." in shown.stdout

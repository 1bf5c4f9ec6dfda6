"""`llm-deeper lessons list/run`: discovery, running one lesson, status, and one-line errors."""

from __future__ import annotations

from conftest import run_cli

WIDE = {"COLUMNS": "250"}  # rich shortens table cells to the terminal width


def test_list_shows_the_basics_lessons_in_order():
    result = run_cli("lessons", "list", env=WIDE)
    assert result.returncode == 0, result.stderr
    positions = [result.stdout.index(f"basics/0{n}") for n in range(8)]
    assert positions == sorted(positions)
    for name in ("00_pandas.py", "03_attention_math.py", "05_attention_positional_encoding.py", "07_conclusion.py"):
        assert name in result.stdout
    assert "Attention step by step" in result.stdout  # the title is the docstring's first line


def test_run_one_lesson_by_number_then_list_shows_its_status():
    result = run_cli("lessons", "run", "03", "--quick", env=WIDE)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "✓ basics/03" in result.stdout
    assert "Weights after the softmax" in result.stdout and "Done: " in result.stdout
    assert "llm-deeper lessons exercise basics/2" in result.stdout  # the lesson names its exercise
    assert "basics/04" not in result.stdout  # exactly one lesson ran
    listing = run_cli("lessons", "list", env=WIDE).stdout
    row = next(line for line in listing.splitlines() if "basics/03" in line)
    assert "✓" in row and "(quick)" in row


def test_unknown_lesson_is_a_one_line_error():
    result = run_cli("lessons", "run", "42")
    assert result.returncode == 2
    assert "no lesson '42'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_week_three_runs_inference_then_tools_then_deployment_and_the_readmes_agree():
    import re

    from conftest import REPO
    from llm_deeper.lessons import all_lessons

    week3 = [l.number for l in all_lessons() if l.week == "inferencing_and_advanced"]
    assert week3.index("00") < week3.index("03") < week3.index("04") < week3.index("05") < week3.index("01") < week3.index("02") < week3.index("07")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| \[(\w+)/(\d\d)_\w+\.py\]", readme, re.M)
    assert listed == [(l.week, l.number) for l in all_lessons()]  # the learning-path table is `lessons list`'s order
    week_readme = (REPO / "src" / "inferencing_and_advanced" / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"^\| `(\d\d)_", week_readme, re.M) == week3

"""The main job in tiny settings: every stage runs and the report is written."""

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def test_speedrun_quick_completes_with_a_report(tmp_path):
    result = run_cli("speedrun", "--quick", "--out", str(tmp_path), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    assert "| Chat turn | ok |" in report
    assert "| Parity: GGUF vs converted folder | ok |" in report  # the suite's only GGUF check: token ids and logits (1e-4)
    assert "Paris" in report
    assert "FAILED" not in report
    assert "| MLX: the tool adapter in mlx-lm | ok |" in report  # converted, and mlx-lm checked against PEFT (or skipped with the reason)
    assert "Speedrun summary" in result.stdout
    card = (tmp_path / "report.html").read_text()
    assert card.count("data:image/png;base64,") >= 2  # TinyGPT and fine-tune loss curves at least
    assert "FutureWarning" not in result.stdout + result.stderr  # library notices stay out of the user's output

    # a rerun reuses what finished; one stage shows it without loading the model again
    again = run_cli("speedrun", "--quick", "--out", str(tmp_path), "--stages", "tinygpt", timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "finished in an earlier run" in again.stdout
    assert "| TinyGPT from scratch | ok (reused) |" in (tmp_path / "report.md").read_text()


def test_speedrun_lists_stages_and_rejects_unknown_ones():
    listed = run_cli("speedrun", "--list")
    assert listed.returncode == 0 and "10_prepare_model" in listed.stdout
    none = run_cli("speedrun", "--stages", "no-such-stage")
    assert none.returncode == 2 and "no stage matches" in none.stdout

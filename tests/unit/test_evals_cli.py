"""`llm-deeper eval` and `eval compare` end to end on a tiny model."""

from __future__ import annotations

import json

from conftest import run_cli

DATA = [
    {"prompt": "Say hello.", "completion": "Hello!"},
    {"instruction": "Name a color.", "output": "Blue"},
    {"messages": [{"role": "user", "content": "Capital of Italy?"}, {"role": "assistant", "content": "Rome"}]},
]


def test_eval_writes_results_and_compare_writes_table_and_chart(tmp_path, tiny_llama_dir):
    from llm_deeper.evals.data import read_examples
    from llm_deeper.evals.generate import Generation
    from llm_deeper.evals.report import write_run
    from llm_deeper.evals.runner import EvalConfig, run_eval

    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in DATA) + "\n", encoding="utf-8")
    out = tmp_path / "llama"
    result = run_cli("eval", "--model", str(tiny_llama_dir), "--data", str(data), "--metrics", "ppl,rouge,exact",
                     "--max-new-tokens", "4", "--label", "llama", "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "results.json").read_text())
    assert saved["info"]["label"] == "llama" and len(saved["examples"]) == 3
    assert {"ppl", "bits_per_byte", "rouge1", "exact_match", "tokens_per_s"} <= set(saved["aggregate"])
    assert saved["aggregate"]["ppl"]["value"] > 1 and "perplexity" in (out / "report.md").read_text()
    # A second run that answers perfectly, written through the library.
    perfect = iter([Generation("Hello!", [], 2, 0.1), Generation("Blue", [], 1, 0.1), Generation("Rome", [], 1, 0.1)])
    write_run(run_eval(read_examples(data), EvalConfig(metrics=("rouge", "exact")), generator=lambda m, t: next(perfect), info={"label": "oracle"}), tmp_path / "oracle")
    result = run_cli("eval", "compare", str(out), str(tmp_path / "oracle"), "--out", str(tmp_path / "cmp"), "--resamples", "200")
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| metric | llama | oracle | Δ oracle − llama |" in table and "| perplexity |" in table
    assert "| exact match |" in table and "1.000 [1.000, 1.000]" in table
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_one_line_error(tmp_path, tiny_llama_dir):
    data = tmp_path / "broken.jsonl"
    data.write_text(json.dumps(DATA[0]) + "\n" + '{"prompt": "x", "completion": \n', encoding="utf-8")
    result = run_cli("eval", "--model", str(tiny_llama_dir), "--data", str(data), "--metrics", "rouge")
    assert result.returncode == 2
    assert "broken.jsonl:2: not valid JSON" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("eval", "compare", str(tmp_path / "nope"))
    assert result.returncode == 2 and "no evaluation results" in result.stderr

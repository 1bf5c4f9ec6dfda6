"""Evaluation: one metric per module, a runner, a report and a comparison.

Reading order:
- `scores.py`      how every metric is stored per example (value, weight),
                   aggregated, and given a bootstrap 95% confidence interval
- `exact.py`       exact match and "contains" for short answers
- `rouge.py`       ROUGE-1/2/L/Lsum through `rouge-score`
- `bertscore.py`   BERTScore through `bert-score` with the bundled MiniLM encoder
- `perplexity.py`  sliding-window perplexity and bits per byte
- `tool_use.py`    tool-call accuracy on OpenAI-shaped `tool_calls` lists
- `speed.py`       tokens per second and latency of each generation
- `data.py`        evaluation examples from JSONL (chat, prompt/completion, Alpaca, text)
- `generate.py`    the model under test: in-process (transformers, PEFT) or any
                   OpenAI-compatible endpoint
- `runner.py`      generate, score, aggregate
- `report.py`      results.json and report.md of one run
- `compare.py`     several runs side by side, with CIs and a bar chart
- `suite.py`       ready-made runs: in-process, through an endpoint, base vs adapter
"""

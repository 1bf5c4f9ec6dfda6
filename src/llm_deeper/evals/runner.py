"""One evaluation run: generate a reply per example, score it, aggregate.

Metric groups (`--metrics`): ppl, rouge, bertscore, exact, tools. Speed and
latency come with every run that generates. Each example gets only the
metrics that apply to it: ROUGE/BERTScore/exact need a reference text,
tool metrics need a tool example, perplexity needs the weights in-process.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from ..errors import UserError
from .bertscore import BertScoreConfig
from .data import EvalExample
from .perplexity import PerplexityConfig
from .scores import GROUPS, Aggregate, aggregate_all

GENERATING = {"rouge", "bertscore", "exact", "tools"}  # groups that need the model's replies
CHOOSABLE = [g for g in GROUPS if g != "speed"]


@dataclass
class EvalConfig:
    """What to compute and how."""

    metrics: tuple[str, ...] = ("rouge", "tools")  # metric groups to compute
    max_new_tokens: int = 128  # reply length limit
    batch_size: int = 8  # in-process: requests the engine decodes together (continuous batching); 1 = one at a time
    temperature: float = 0.0  # 0 = greedy (reproducible, comparable across backends)
    seed: int = 0  # sampling seed (temperature > 0) and bootstrap seed
    # In-process: apply the server's "auto" tool grammar (a started call is held to its schema), so the figures are what
    # clients of `llm-deeper serve` get; False scores what the model learned (FULL: exact arguments 0.537 held, 0.415 free).
    constrain: bool = True
    rouge_stemmer: bool = False  # Porter-stem words before ROUGE matching
    bertscore: BertScoreConfig = field(default_factory=BertScoreConfig)  # encoder layer, batch size
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)  # window and stride
    resamples: int = 1000  # bootstrap resamples for the 95% intervals


@dataclass
class EvalRun:
    """Everything one run produced."""

    info: dict  # label, model, adapter, backend, data, config, machine, notes
    records: list[dict]  # one per example: id, prompt tail, reference, prediction, calls, scores
    aggregates: dict[str, Aggregate]  # metric -> value with 95% CI


def parse_metrics(text: str) -> tuple[str, ...]:
    """'rouge,tools' → ('rouge', 'tools'); 'all' = every group; unknown words are a UserError."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return tuple(CHOOSABLE)
    unknown = [w for w in words if w not in CHOOSABLE]
    if unknown or not words:
        raise UserError(f"unknown metric {', '.join(unknown) or '(none)'}: choose from {', '.join(CHOOSABLE)} or 'all' (comma-separated)")
    return tuple(dict.fromkeys(words))


def reference_nll(model, tokenizer, example: EvalExample, config: PerplexityConfig):
    """NLL of the reference assistant turn given its prompt (text examples: the whole text)."""
    from ..chat_format import training_ids
    from .perplexity import masked_nll, text_nll

    if example.text is not None:
        return text_nll(model, tokenizer, example.text, config)
    encoded = training_ids(tokenizer, example.prompt + [example.target], example.tools, where=example.id)
    start, stop = encoded.turns[-1]  # the target is the last message
    scored = [start <= k < stop for k in range(len(encoded.input_ids))]
    return masked_nll(model, tokenizer, encoded.input_ids, scored, config)


def short(messages: list[dict], limit: int = 200) -> str:
    """The last user message, shortened, for reports."""
    users = [m.get("content") or "" for m in messages if m["role"] == "user"]
    text = users[-1] if users else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_eval(
    examples: list[EvalExample],
    config: EvalConfig,
    generator=None,
    scorer=None,
    info: dict | None = None,
    on_progress: Callable[[str, int, int], None] = lambda phase, done, total: None,
) -> EvalRun:
    """Generate (if a metric needs replies), score and aggregate.

    `generator(messages, tools) -> Generation` is the model under test;
    `scorer` is a (model, tokenizer) pair for perplexity, or None.
    """
    from .bertscore import bertscore, bertscore_scores, describe
    from .exact import exact_scores
    from .perplexity import ppl_scores
    from .rouge import rouge_scores
    from .speed import speed_scores
    from .tool_use import scored_calls, tool_scores

    wanted = set(config.metrics)
    if wanted & GENERATING and generator is None:
        raise UserError(f"metrics {', '.join(sorted(wanted & GENERATING))} need a model to generate replies")
    if "ppl" in wanted and scorer is None:
        raise UserError("perplexity needs the model's weights in this process; it cannot be computed through --base-url (drop 'ppl' from --metrics)")
    records = [{"id": ex.id, "prompt": short(ex.prompt) if ex.prompt else (ex.text or "")[:200], "reference": ex.reference,
                "expected_calls": ex.expected_calls, "scores": {}} for ex in examples]

    if "ppl" in wanted:
        model, tokenizer = scorer
        for i, (ex, record) in enumerate(zip(examples, records)):
            if ex.text is not None or ex.target is not None:
                record["scores"].update(ppl_scores(reference_nll(model, tokenizer, ex, config.perplexity)))
            on_progress("perplexity", i + 1, len(examples))

    if wanted & GENERATING:
        generating = [i for i, ex in enumerate(examples) if ex.generates]
        replies = {}
        if hasattr(generator, "batch"):  # the engine: every prompt at once, continuous batching does the rest
            done = lambda n: on_progress("generate", n, len(generating))  # noqa: E731
            replies.update(zip(generating, generator.batch([(examples[i].prompt, examples[i].tools) for i in generating], on_done=done)))
        else:
            for n, i in enumerate(generating, 1):
                replies[i] = generator(examples[i].prompt, examples[i].tools)
                on_progress("generate", n, len(generating))
        for i in generating:
            ex, record, reply = examples[i], records[i], replies[i]
            record.update(prediction=reply.text, predicted_calls=reply.tool_calls, completion_tokens=reply.completion_tokens, seconds=round(reply.seconds, 4))
            scores = record["scores"]
            scores.update(speed_scores(reply.completion_tokens, reply.seconds))
            has_reference = bool(ex.reference.strip())
            if "rouge" in wanted and has_reference:
                scores.update(rouge_scores(reply.text, ex.reference, config.rouge_stemmer))
            if "exact" in wanted and has_reference:
                scores.update(exact_scores(reply.text, ex.reference))
            if "tools" in wanted and ex.expected_calls is not None:
                scores.update(tool_scores(scored_calls(reply.tool_calls, reply.text), ex.expected_calls, ex.tools))
        if "bertscore" in wanted:
            scored = [i for i in generating if examples[i].reference.strip()]
            on_progress("bertscore", 0, 1)
            rows = bertscore([records[i]["prediction"] for i in scored], [examples[i].reference for i in scored], config.bertscore)
            for i, row in zip(scored, rows):
                records[i]["scores"].update(bertscore_scores(row))
            on_progress("bertscore", 1, 1)

    aggregates = aggregate_all(records, config.resamples, config.seed)
    if not aggregates:
        raise UserError("no metric applied to any example: tool metrics need tool examples, text metrics need reference answers, perplexity needs ppl")
    full_info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "examples": len(examples),
        "config": {**asdict(config), "metrics": list(config.metrics)},
        **(info or {}),
    }
    if "bertscore" in wanted:
        full_info["bertscore"] = describe(config.bertscore)
    if "ppl" in wanted:
        full_info["perplexity"] = ("text examples: every token after the first; chat examples: the reference assistant turn "
                                   "(end-of-turn token included) given its prompt; token-weighted over the data set")
    return EvalRun(info=full_info, records=records, aggregates=aggregates)

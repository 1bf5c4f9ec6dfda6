"""Ready-made runs for the CLI, the speedrun and the lesson.

- `local_run`:       the engine's base model or one of its LoRA adapters on examples
- `remote_run`:      an OpenAI-compatible endpoint on examples
- `base_vs_adapter`: the base model, then the same weights with the adapter
                     (one engine, the adapter picked per request by name),
                     written side by side with a comparison table and chart
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..inference.sampling import SamplingConfig
from .data import EvalExample
from .runner import EvalConfig, EvalRun, run_eval

Progress = Callable[[str, int, int], None]


def sampling(config: EvalConfig) -> SamplingConfig:
    """Decoding settings of a run: greedy by default; a seed only matters when sampling."""
    return SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=1.0, seed=config.seed if config.temperature > 0 else None)


def local_run(engine, examples: list[EvalExample], config: EvalConfig, label: str, adapter: str | None = None,
              data: str | Path | None = None, on_progress: Progress = lambda *_: None) -> EvalRun:
    """Evaluate the engine's base model, or its LoRA adapter named `adapter`, in this process."""
    from ..chat.engine_model import EngineChatModel
    from .generate import ChatGenerator, peft_scorer

    generator = ChatGenerator(EngineChatModel(engine), sampling(config), adapter=adapter, constrain=config.constrain)
    folder = engine.adapters[adapter].folder if adapter else None
    info = {"label": label, "model": engine.loaded.ref.display_name, "adapter": str(folder) if folder else None,
            "backend": generator.backend + (", server's tool grammar" if config.constrain else ", unconstrained"), "data": str(data) if data else None}
    if "ppl" not in config.metrics:
        return run_eval(examples, config, generator=generator, scorer=None, info=info, on_progress=on_progress)
    # Perplexity runs the transformers model (with PEFT for an adapter); the engine decodes from its own copy of the weights.
    with peft_scorer(engine.model, engine.tokenizer, folder) as scorer:
        return run_eval(examples, config, generator=generator, scorer=scorer, info=info, on_progress=on_progress)


def remote_run(base_url: str, model_name: str, examples: list[EvalExample], config: EvalConfig, label: str, api_key: str | None = None,
               data: str | Path | None = None, on_progress: Progress = lambda *_: None) -> EvalRun:
    """Evaluate whatever an OpenAI-compatible server serves under `model_name`."""
    from ..chat.openai_model import OpenAIChatModel
    from .generate import ChatGenerator

    generator = ChatGenerator(OpenAIChatModel(base_url, model_name, api_key=api_key), sampling(config))
    info = {"label": label, "model": model_name, "backend": generator.backend, "base_url": base_url, "data": str(data) if data else None}
    return run_eval(examples, config, generator=generator, scorer=None, info=info, on_progress=on_progress)


@dataclass
class BaseVsAdapter:
    """What `base_vs_adapter` wrote."""

    folders: list[Path]  # one run folder per model (results.json + report.md)
    comparison_md: Path  # side-by-side table with intervals and paired differences
    chart: Path  # bar chart PNG
    markdown: str  # the comparison table text (for reports)


def base_vs_adapter(loaded, adapter: str | Path, examples: list[EvalExample], config: EvalConfig, out: str | Path,
                    data: str | Path | None = None, labels: tuple[str, str] = ("base", "lora"),
                    on_progress: Progress = lambda *_: None, on_run: Callable[[str], None] = lambda _: None) -> BaseVsAdapter:
    """Base model, then the adapter on the same weights (one engine, the adapter picked by name), compared."""
    from ..inference.engine import Engine
    from .compare import bar_chart, compare, markdown
    from .generate import check_adapter
    from .report import load_run, write_run

    check_adapter(adapter)  # before the base run, not minutes later
    out = Path(out)
    with Engine(loaded, max_batch=config.batch_size, name=labels[0]) as engine:  # the base answers to its label, the adapter to its own
        engine.add_adapter(labels[1], adapter)
        on_run(labels[0])
        write_run(local_run(engine, examples, config, labels[0], data=data, on_progress=on_progress), out / labels[0])
        on_run(labels[1])
        write_run(local_run(engine, examples, config, labels[1], adapter=labels[1], data=data, on_progress=on_progress), out / labels[1])
    runs = [load_run(out / label) for label in labels]
    comp = compare(runs, config.resamples, config.seed)
    text = markdown(comp, f"{labels[0]} vs {labels[1]} on {Path(data).name if data else 'the data set'}")
    (out / "compare.md").write_text(text, encoding="utf-8")
    chart = bar_chart(comp, out / "compare.png")
    return BaseVsAdapter(folders=[out / label for label in labels], comparison_md=out / "compare.md", chart=chart, markdown=text)

"""Ready-made runs for the CLI, the speedrun and the lesson.

- `local_run`:       a loaded model (optionally + a LoRA adapter) on examples
- `remote_run`:      an OpenAI-compatible endpoint on examples
- `base_vs_adapter`: the base model, then the same weights with the adapter,
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


def local_run(loaded, examples: list[EvalExample], config: EvalConfig, label: str, model=None, adapter: str | Path | None = None,
              data: str | Path | None = None, on_progress: Progress = lambda *_: None) -> EvalRun:
    """Evaluate `model` (default: loaded.model) in this process."""
    from .generate import LocalGenerator

    model = model if model is not None else loaded.model
    generator = LocalGenerator(model, loaded.tokenizer, sampling(config), constrain=config.constrain)
    info = {"label": label, "model": loaded.ref.display_name, "adapter": str(adapter) if adapter else None,
            "backend": generator.backend + (", server's tool grammar" if config.constrain else ", unconstrained"), "data": str(data) if data else None}
    return run_eval(examples, config, generator=generator, scorer=(model, loaded.tokenizer), info=info, on_progress=on_progress)


def remote_run(base_url: str, model_name: str, examples: list[EvalExample], config: EvalConfig, label: str, api_key: str | None = None,
               data: str | Path | None = None, on_progress: Progress = lambda *_: None) -> EvalRun:
    """Evaluate whatever an OpenAI-compatible server serves under `model_name`."""
    from .generate import OpenAIGenerator

    generator = OpenAIGenerator(base_url, model_name, sampling(config), api_key=api_key)
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
    """Base model, then base + adapter (same weights, adapter unloaded afterwards), compared."""
    from .compare import bar_chart, compare, markdown
    from .generate import load_adapter
    from .report import load_run, write_run

    from .generate import check_adapter

    check_adapter(adapter)  # before the base run, not minutes later
    out = Path(out)
    on_run(labels[0])
    base = local_run(loaded, examples, config, labels[0], data=data, on_progress=on_progress)
    write_run(base, out / labels[0])
    on_run(labels[1])
    tuned_model = load_adapter(loaded.model, adapter)
    try:
        tuned = local_run(loaded, examples, config, labels[1], model=tuned_model, adapter=adapter, data=data, on_progress=on_progress)
    finally:
        loaded.model = tuned_model.unload()  # remove the LoRA layers: the loaded model is the base again
    write_run(tuned, out / labels[1])
    runs = [load_run(out / label) for label in labels]
    comp = compare(runs, config.resamples, config.seed)
    text = markdown(comp, f"{labels[0]} vs {labels[1]} on {Path(data).name if data else 'the data set'}")
    (out / "compare.md").write_text(text, encoding="utf-8")
    chart = bar_chart(comp, out / "compare.png")
    return BaseVsAdapter(folders=[out / label for label in labels], comparison_md=out / "compare.md", chart=chart, markdown=text)

"""`llm-deeper eval` (one model, or base vs LoRA) and `llm-deeper eval compare`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import CLIENT_API_KEY_OPTION, MODEL_OPTION

eval_app = typer.Typer(
    help="Score a model on a data set (perplexity, ROUGE, BERTScore, exact match, tool use, speed). "
    "Example: llm-deeper eval --data test.jsonl --metrics tools,rouge",
    invoke_without_command=True,
)


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


def _print_run(console, run, folder: Path) -> None:
    from rich.table import Table

    from ..evals.scores import fmt, spec

    table = Table(title=f"{run.info.get('label')} — {run.info.get('examples')} examples")
    for column in ("metric", "value", "95% CI", "n"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, agg in run.aggregates.items():
        table.add_row(spec(name).label, fmt(name, agg.value), f"{fmt(name, agg.low)} – {fmt(name, agg.high)}", str(agg.n))
    console.print(table)
    if "bertscore" in run.info:
        console.print(f"[dim]BERTScore: {run.info['bertscore']['encoder']}, layer {run.info['bertscore']['layer']}; not comparable to roberta-large numbers.[/]")
    console.print(f"results: {folder / 'results.json'}\nreport:  {folder / 'report.md'}")


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    data: Path = typer.Option(None, "--data", "-d", help="JSONL (chat with tools, Alpaca, prompt/completion, or {\"text\"}) or a .txt file."),
    model: str = MODEL_OPTION,
    adapter: Path = typer.Option(None, "--adapter", "-a", help="PEFT LoRA adapter folder to put on the model."),
    with_base: bool = typer.Option(False, "--with-base", help="With --adapter: also score the base model and write a comparison."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (ours or vLLM), e.g. http://127.0.0.1:8000/v1; --model is the served name."),
    api_key: str = CLIENT_API_KEY_OPTION,
    metrics: str = typer.Option("rouge,tools", "--metrics", help="Comma-separated: ppl, rouge, bertscore, exact, tools, or 'all'."),
    limit: int = typer.Option(None, "--limit", min=1, help="Score only the first N examples."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", "-n", min=1, help="Reply length limit."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1, help="In-process: requests the engine decodes together (continuous batching; 1 = one at a time)."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", min=0.0, max=2.0, help="0 = greedy (reproducible)."),
    constrain: bool = typer.Option(True, "--constrain/--free", help="In-process: hold started tool calls to their schemas as `llm-deeper serve` does (default: what users get), or leave replies free (--free: what the model learned)."),
    stem: bool = typer.Option(False, "--stem", help="Porter-stem words before ROUGE matching."),
    bertscore_layer: int = typer.Option(5, "--bertscore-layer", help="Encoder layer BERTScore compares (1-6 for all-MiniLM-L6-v2)."),
    ppl_window: int = typer.Option(None, "--ppl-window", help="Tokens per perplexity window (default: context, at most 1024)."),
    ppl_stride: int = typer.Option(None, "--ppl-stride", help="Tokens the perplexity window moves (default: window / 2)."),
    label: str = typer.Option(None, "--label", help="Name of this run in reports and comparisons."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for results.json and report.md (default: under $LLM_DEEPER_HOME/evals)."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling (temperature > 0) and the bootstrap."),
) -> None:
    """Score a model on a data set; writes results.json and report.md. Example: llm-deeper eval --model smollm2-135m-instruct --adapter ADAPTER --with-base --data test.jsonl --metrics tools,rouge"""
    if ctx.invoked_subcommand is not None:
        return
    import time

    from rich.console import Console

    from ..errors import UserError
    from ..evals.bertscore import BertScoreConfig
    from ..evals.data import read_examples
    from ..evals.perplexity import PerplexityConfig
    from ..evals.report import write_run
    from ..evals.runner import EvalConfig, parse_metrics
    from ..paths import artifact_dir

    from ..inputs import check_data_file, check_input_dir, check_output_dir

    if data is None:
        raise UserError("missing --data FILE: a JSONL data set or a .txt file (see `llm-deeper eval --help`)")
    check_data_file(data, "--data", " (make a tool set with `llm-deeper data make-tools`, or pass any JSONL / .txt file)")
    if adapter is not None:
        check_input_dir(adapter, "--adapter", "PEFT adapter folder")
    if out is not None:
        check_output_dir(out, "--out")
    if with_base and adapter is None:
        raise UserError("--with-base compares the base model with an adapter: add --adapter DIR")
    if base_url and adapter is not None:
        raise UserError("with --base-url the server applies adapters: pass the adapter's served name as --model instead of --adapter")
    config = EvalConfig(metrics=parse_metrics(metrics), max_new_tokens=max_new_tokens, batch_size=batch_size, temperature=temperature, seed=seed, constrain=constrain, rouge_stemmer=stem,
                        bertscore=BertScoreConfig(layer=bertscore_layer), perplexity=PerplexityConfig(window=ppl_window, stride=ppl_stride))
    examples = read_examples(data, limit)
    console = Console()
    if adapter is not None:
        from ..evals.generate import check_adapter

        check_adapter(adapter)
    name = label or ("lora" if adapter else Path(model).name)
    if with_base and name == "base":
        raise UserError("--label base is taken by the base model in a --with-base run; pick another label")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = out or artifact_dir("evals") / (f"{stamp}-base-vs-{name}" if with_base else f"{stamp}-{name}").replace("/", "-")

    with _progress(console) as progress:
        task = progress.add_task("starting", total=None)
        which = {"run": name}  # the run being scored (base, then the adapter, with --with-base)

        def on_progress(phase: str, done: int, total: int) -> None:
            progress.update(task, description=f"{which['run']}: {phase}", completed=done, total=total)

        def on_run(label: str) -> None:
            which["run"] = label
            progress.update(task, completed=0)

        if base_url:
            from ..evals.suite import remote_run

            run = remote_run(base_url, model, examples, config, name, api_key=api_key, data=data, on_progress=on_progress)
            runs = [(run, folder)]
        else:
            from ..models.loaders import load_model

            progress.update(task, description=f"loading {model}")
            loaded = load_model(model)
            if with_base:
                from ..evals.report import load_run
                from ..evals.suite import base_vs_adapter

                result = base_vs_adapter(loaded, adapter, examples, config, folder, data=data, labels=("base", name), on_progress=on_progress,
                                         on_run=on_run)
                progress.stop()
                _print_comparison(console, [load_run(f) for f in result.folders], folder, config.resamples, config.seed, write=False)
                console.print(f"runs:  {', '.join(str(f) for f in result.folders)}\ntable: {result.comparison_md}\nchart: {result.chart}")
                return
            from ..evals.suite import local_run
            from ..inference.engine import Engine

            with Engine(loaded, adapters={name: adapter} if adapter else None, max_batch=config.batch_size,
                        name=f"{name}-base" if adapter and name == loaded.ref.display_name else None) as engine:
                run = local_run(engine, examples, config, name, adapter=name if adapter else None, data=data, on_progress=on_progress)
            runs = [(run, folder)]
    for run, where in runs:
        write_run(run, where)
        _print_run(console, run, where)


def _print_comparison(console, runs: list[dict], folder: Path, resamples: int, seed: int, title: str = "Comparison", write: bool = True) -> None:
    from rich.table import Table

    from ..evals.compare import bar_chart, cell, compare, delta_cell, markdown
    from ..evals.scores import spec

    comp = compare(runs, resamples, seed)
    table = Table(title=f"{title} (95% bootstrap intervals)")
    table.add_column("metric")
    for label in comp.labels:
        table.add_column(label, justify="right")
    for label in comp.labels[1:]:
        table.add_column(f"Δ {label} − {comp.labels[0]}", justify="right")
    for name in comp.metrics:
        table.add_row(spec(name).label, *[cell(name, a) for a in comp.table[name]], *[delta_cell(name, d) for d in comp.deltas[name][1:]])
    console.print(table)
    if not write:
        return
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "compare.md"
    md.write_text(markdown(comp, title), encoding="utf-8")
    chart = bar_chart(comp, folder / "compare.png")
    console.print(f"table: {md}\nchart: {chart}")


@eval_app.command("compare")
def compare_runs(
    runs: list[Path] = typer.Argument(..., help="Run folders (or results.json files) written by `llm-deeper eval`; the first is the baseline."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for compare.md and compare.png (default: under $LLM_DEEPER_HOME/evals)."),
    resamples: int = typer.Option(1000, "--resamples", min=100, help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """Side-by-side table with 95% CIs and paired differences, plus a bar chart. Example: llm-deeper eval compare RUN_BASE RUN_LORA"""
    import time

    from rich.console import Console

    from ..evals.report import load_run
    from ..inputs import check_output_dir
    from ..paths import artifact_dir

    if out is not None:
        check_output_dir(out, "--out")
    loaded = [load_run(path) for path in runs]
    folder = out or artifact_dir("evals") / time.strftime("compare-%Y%m%d-%H%M%S")
    _print_comparison(Console(), loaded, folder, resamples, seed)


@eval_app.command("bfcl")
def bfcl(
    model: str = MODEL_OPTION,
    adapter: Path = typer.Option(None, "--adapter", "-a", help="PEFT LoRA adapter folder: scored beside the base model (in-process)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint instead of in-process; --model is the served name (base or adapter)."),
    api_key: str = CLIENT_API_KEY_OPTION,
    categories: str = typer.Option("all", "--categories", "-c", help="Comma-separated: simple_python, multiple, parallel, parallel_multiple, irrelevance, or 'all'; live_simple, live_multiple, live_irrelevance, or 'live'."),
    limit: int = typer.Option(None, "--limit", min=1, help="A fixed random sample of N items per category (same --seed, same items)."),
    tool_choice: str = typer.Option("auto", "--tool-choice", help="auto, required, or both: 'auto,required'."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", "-n", min=1, help="Reply length limit."),
    max_batch: int = typer.Option(4, "--max-batch", min=1, help="In-process: items decoded together by the engine."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the runs and compare.md (default: under $LLM_DEEPER_HOME/evals)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and the bootstrap."),
) -> None:
    """Berkeley Function Calling Leaderboard (v4, AST categories), per category and overall, base vs LoRA. Example: llm-deeper eval bfcl --adapter ADAPTER --limit 20"""
    import time

    from rich.console import Console

    from ..errors import UserError
    from ..evals.bfcl import load_category, parse_categories
    from ..evals.bfcl_run import ChatBackend, run_bfcl, write_comparison
    from ..evals.report import load_run, write_run
    from ..paths import artifact_dir

    choices = [c.strip() for c in tool_choice.split(",") if c.strip()]
    bad = [c for c in choices if c not in ("auto", "required")]
    if bad or not choices:
        raise UserError(f"--tool-choice must be auto, required or 'auto,required', got {tool_choice!r}")
    _check_served_eval_inputs(model, adapter, base_url, out)
    items = [item for category in parse_categories(categories) for item in load_category(category, limit, seed)]
    console = Console()
    folder = out or artifact_dir("evals") / time.strftime("bfcl-%Y%m%d-%H%M%S")
    engine = None
    if base_url:
        from ..chat.openai_model import OpenAIChatModel

        backend, targets = ChatBackend(OpenAIChatModel(base_url, model, api_key), max_new_tokens), [(model, model)]
    else:
        engine = _load_engine(console, model, adapter, max_batch, max_queue=max_batch)
        from ..chat.engine_model import EngineChatModel

        backend, targets = ChatBackend(EngineChatModel(engine), max_new_tokens), [("base", None)] + ([("lora", "lora")] if adapter else [])
    folders = []
    try:
        for choice in choices:
            for name, target in targets:
                label = f"{name} {choice}" if len(choices) > 1 else name
                console.print(f"{label}: {len(items)} BFCL items")
                run = run_bfcl(items, backend, target, choice, label, info={"model": model, "adapter": str(adapter) if target == "lora" else None},
                               seed=seed, on_done=lambda done: done % 25 == 0 and console.print(f"  {done}/{len(items)}"))
                where = folder / label.replace(" ", "-").replace("/", "-")
                write_run(run, where)
                folders.append(where)
    finally:
        if engine is not None:
            engine.close()
    _print_comparison(console, [load_run(f) for f in folders], folder, 1000, seed, title="BFCL v4 AST (95% bootstrap intervals)", write=False)
    table, _ = write_comparison(folders, folder, seed=seed, title="BFCL v4 AST categories")
    console.print(f"runs:  {', '.join(str(f) for f in folders)}\ntable: {table}")


@eval_app.command("agent")
def agent_tasks(
    model: str = MODEL_OPTION,
    adapter: Path = typer.Option(None, "--adapter", "-a", help="PEFT LoRA adapter folder: scored beside the base model (in-process)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint instead of in-process; --model is the served name (base or adapter)."),
    api_key: str = CLIENT_API_KEY_OPTION,
    limit: int = typer.Option(30, "--limit", min=1, help="Held-out tasks to run (the same --seed gives the same tasks)."),
    two_step_share: float = typer.Option(0.33, "--two-step-share", min=0.0, max=1.0, help="Share of tasks that need two chained tool calls."),
    max_steps: int = typer.Option(4, "--max-steps", min=1, help="Model turns per task before giving up."),
    tool_choice: str = typer.Option("auto", "--tool-choice", help="First turn: auto or required."),
    then: str = typer.Option("auto", "--then", help="Later turns: auto, none or required ('auto' lets a second call happen)."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", "-n", min=1, help="Token limit per model turn."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds each tool call may take."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Tasks run at once (in-process: the engine decodes their turns together)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the runs and compare.md (default: under $LLM_DEEPER_HOME/evals)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the tasks and the bootstrap."),
) -> None:
    """End-to-end agent success on held-out tasks (one and two tool steps), base vs LoRA. Example: llm-deeper eval agent --adapter ADAPTER --limit 30"""
    import logging
    import time

    from rich.console import Console

    from ..errors import UserError
    from ..evals.agent_run import run_agent_tasks
    from ..evals.agent_tasks import make_agent_tasks
    from ..evals.bfcl_run import write_comparison
    from ..evals.report import load_run, write_run
    from ..paths import artifact_dir

    if tool_choice not in ("auto", "required"):
        raise UserError(f"--tool-choice must be auto or required, got {tool_choice!r}")
    if then not in ("auto", "none", "required"):
        raise UserError(f"--then must be auto, none or required, got {then!r}")
    _check_served_eval_inputs(model, adapter, base_url, out)
    tasks = make_agent_tasks(limit, seed, two_step_share)
    console = Console(highlight=False)
    folder = out or artifact_dir("evals") / time.strftime("agent-%Y%m%d-%H%M%S")
    logging.getLogger("llm_deeper.tools").setLevel(logging.ERROR)  # every model turn and tool call would log a line
    engine = None
    if base_url:
        from ..chat.openai_model import OpenAIChatModel
        from ..models.registry import DEFAULT_MODEL

        served = None if model == DEFAULT_MODEL else model  # the server's first model unless one is named
        targets = [(model, OpenAIChatModel(base_url, served, api_key), None, None)]
    else:
        from ..chat.engine_model import EngineChatModel

        engine = _load_engine(console, model, adapter, concurrency)
        targets = [("base", EngineChatModel(engine), None, None)]
        if adapter is not None:
            targets.append(("lora", EngineChatModel(engine), "lora", str(adapter)))
    folders = []
    try:
        for name, backend, target, adapter_path in targets:
            console.print(f"{name}: {len(tasks)} held-out agent tasks (max {max_steps} turns each)")

            def show(done: int, record: dict) -> None:
                mark = "[green]✓[/]" if record["verdict"] == "pass" else "[red]✗[/]"
                console.print(f"  {done}/{len(tasks)} {mark} {record['id']} ({record['seconds']:.1f} s, {record['turns']} turns)"
                              + ("" if record["verdict"] == "pass" else f": {record['verdict']}"))

            run = run_agent_tasks(tasks, backend, name, max_steps, tool_choice, then, timeout,
                                  info={"model": model, "adapter": adapter_path}, seed=seed, concurrency=concurrency, on_done=show,
                                  max_new_tokens=max_new_tokens, model=target)
            where = folder / name.replace(" ", "-").replace("/", "-")
            write_run(run, where)
            folders.append(where)
    finally:
        if engine is not None:
            engine.close()
    _print_comparison(console, [load_run(f) for f in folders], folder, 1000, seed, title="Agent tasks, end to end", write=False)
    table, _ = write_comparison(folders, folder, seed=seed, title="Agent tasks, end to end")
    console.print(f"runs:  {', '.join(str(f) for f in folders)}\ntable: {table}")


def _check_served_eval_inputs(model: str, adapter: Path | None, base_url: str | None, out: Path | None) -> None:
    """`eval bfcl` and `eval agent`: every bad flag is one line before anything loads."""
    from ..errors import UserError
    from ..inputs import check_input_dir, check_output_dir

    if base_url and adapter is not None:
        raise UserError("with --base-url the server applies adapters: pass the adapter's served name as --model instead of --adapter")
    if out is not None:
        check_output_dir(out, "--out")
    if adapter is not None:
        check_input_dir(adapter, "--adapter", "PEFT adapter folder")
    if not base_url:
        from ..models.registry import resolve

        resolve(model)


def _load_engine(console, model: str, adapter: Path | None, max_batch: int, **engine_options):
    """The engine with the base model and, when given, the adapter served as "lora"."""
    from ..evals.generate import check_adapter
    from ..inference.engine import Engine

    if adapter is not None:
        check_adapter(adapter)
    console.print(f"loading {model}{' + ' + str(adapter) if adapter else ''}")
    return Engine.load(model, loras={"lora": adapter} if adapter else None, max_batch=max_batch, **engine_options)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")

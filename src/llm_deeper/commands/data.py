"""`llm-deeper data {make-tools,inspect}`: the synthetic tool data set, and a look inside any SFT file."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import MODEL_OPTION

data_app = typer.Typer(help="Make and inspect fine-tuning data. Example: llm-deeper data make-tools --out data/tools", no_args_is_help=True)


@data_app.command("make-tools")
def make_tools(
    out: Path = typer.Option(..., "--out", "--output", "-o", help="Folder for train.jsonl and test.jsonl."),
    n_train: int = typer.Option(400, "--n-train", min=1, help="Training conversations."),
    n_test: int = typer.Option(60, "--n-test", min=1, help="Held-out conversations (new phrasings and argument values)."),
    distractors: int = typer.Option(2, "--distractors", min=0, help="Tools offered besides the right one in each conversation."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same files."),
    multi: float = typer.Option(0.0, "--multi", min=0.0, max=1.0, help="Share of training conversations with 2-3 requests behind one tool prompt (bench/RESULTS.md, issue 23)."),
    twins: float = typer.Option(0.0, "--twins", min=0.0, max=1.0, help="Share of refusals built as twins of calls: one tool list, a request it serves and one it does not, trained in one step (bench/RESULTS.md, issue 23)."),
) -> None:
    """Write a synthetic tool-calling data set (OpenAI messages + tools column). Example: llm-deeper data make-tools --out data/tools"""
    from collections import Counter

    from rich.console import Console

    from ..data.toolcalls import MIX, TEST_MIX, make_tool_dataset, with_multi, with_twins
    from ..data.sft import write_jsonl
    from ..inputs import check_output_dir

    check_output_dir(out, "--out")
    mix = with_multi(multi) if multi else MIX
    train, test = make_tool_dataset(n_train, n_test, seed, distractors, mix=with_twins(twins, mix) if twins else mix, test_mix=TEST_MIX)
    console = Console()
    for name, rows in (("train", train), ("test", test)):
        path = write_jsonl(out / f"{name}.jsonl", rows)
        counts = Counter(r.meta["expected_tool"] or "(no tool)" for r in rows)
        console.print(f"[green]✓[/] {path}: {len(rows)} conversations; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@data_app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="JSONL file (messages / Alpaca / prompt-completion)."),
    model: str = MODEL_OPTION,
    max_length: int = typer.Option(512, "--max-length", min=8, help="Report how many conversations this length cuts."),
    show: int = typer.Option(1, "--show", min=0, help="Render this many examples with the trained tokens highlighted."),
) -> None:
    """Validate a data file and show token counts and the assistant-only loss mask. Example: llm-deeper data inspect data/tools/train.jsonl"""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..data.sft import read_jsonl
    from ..data.sft_render import IGNORE, tokenize_example, uses_tools
    from ..inputs import check_data_file
    from ..models.loaders import load_tokenizer

    examples = read_jsonl(check_data_file(path, "PATH"))
    tokenizer = load_tokenizer(model)
    rows = [tokenize_example(tokenizer, e) for e in examples]
    lengths = sorted(len(r.input_ids) for r in rows)
    trained = sum(r.trained_tokens for r in rows)
    table = Table(title=f"{path}", show_header=False)
    table.add_row("conversations", str(len(examples)))
    table.add_row("with tools / tool calls", str(sum(uses_tools(e) for e in examples)))
    table.add_row("tokens (min / median / max)", f"{lengths[0]} / {lengths[len(lengths) // 2]} / {lengths[-1]}")
    table.add_row("trained (assistant) tokens", f"{trained:,} of {sum(lengths):,} ({100 * trained / max(sum(lengths), 1):.1f}%)")
    table.add_row(f"cut at --max-length {max_length}", str(sum(n > max_length for n in lengths)))
    console = Console()
    console.print(table)
    for row in rows[:show]:
        console.rule(row.sources[0])
        pieces = []
        for token, label in zip(row.input_ids, row.labels):
            text = escape(tokenizer.decode([token]))
            pieces.append(f"[bold green]{text}[/]" if label != IGNORE else f"[dim]{text}[/]")
        console.print("".join(pieces))
        console.print("[dim](dim: prompt, not trained; [/][bold green]green[/][dim]: assistant tokens the loss trains on)[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

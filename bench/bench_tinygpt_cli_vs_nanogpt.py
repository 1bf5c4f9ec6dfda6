"""`llm-deeper tinygpt train` as a user types it vs nanoGPT's own train.py: wall time, tokens/s, val loss.

nanoGPT's CPU recipe (Tiny Shakespeare, char level, 4 layers, 4 heads, width
128, context 64, batch 12, lr 1e-3, 2000 iterations, dropout 0), run twice:

- A: nanoGPT's `train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 ...`
  from a checkout (`--nanogpt DIR`), on a temporary copy with the data prepared as its prepare.py does;
- B: `llm-deeper tinygpt train --text … --tokenizer char --layers 4 --heads 4 --embd 128 --context 64
  --batch-size 12 --steps 2000 --lr 1e-3 --dropout 0 --warmup 100`: no speed flags.

Each is a fresh process; wall time counts everything a user waits for
(start-up, data preparation, evaluations, checkpoints). A and B alternate
(A B, then B A, ...) so that load from other processes on a shared machine
falls on both; the ratios are the result. tokens/s: nanoGPT's median
iteration time (as it logs), ours as the CLI reports it (evaluation excluded
for both); wall tokens/s = 2000 × 768 / wall time.

Run:   python bench/bench_tinygpt_cli_vs_nanogpt.py --nanogpt /work/nanogpt [--rounds 2]
Without --nanogpt it prints {"skipped": reason} and exits 0.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import alternate, load, report, skipped, timed

REPO = Path(__file__).resolve().parents[1]
# ../shared next to the repository (a worktree sits one level deeper: ../../shared).
DEFAULT_DATA = next((p for p in (REPO.parent / "shared" / "data" / "tinyshakespeare.txt", REPO.parents[1] / "shared" / "data" / "tinyshakespeare.txt") if p.is_file()),
                    REPO.parent / "shared" / "data" / "tinyshakespeare.txt")
OURS = ["tinygpt", "train", "--tokenizer", "char", "--layers", "4", "--heads", "4", "--embd", "128", "--context", "64",
        "--batch-size", "12", "--steps", "2000", "--lr", "1e-3", "--dropout", "0", "--warmup", "100"]
TARGETS = {"tokens_per_s_ratio_min": 1.5, "wall_ratio_max": 0.67, "val_loss_max": 1.70}


def with_steps(args: list[str], steps: int) -> list[str]:
    return [str(steps) if i and args[i - 1] == "--steps" else a for i, a in enumerate(args)]


def run_ours(text: Path, steps: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tinygpt-cli-bench-") as out:
        extra = ["--threads", str(threads)] if threads else []
        cmd = [sys.executable, "-m", "llm_deeper", *OURS[:2], "--text", str(text), *with_steps(OURS[2:], steps), *extra, "--out", out]
        wall, proc = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "200"}))
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    found = re.search(r"val loss ([\d.]+), ([\d,]+) tokens/s", proc.stdout)
    return {"wall_s": round(wall, 1), "tokens_per_s": int(found.group(2).replace(",", "")) if found else None,
            "wall_tokens_per_s": round(steps * 768 / wall), "val_loss": float(found.group(1)) if found else None,
            "command": "llm-deeper " + " ".join(OURS[:2] + ["--text", str(text)] + with_steps(OURS[2:], steps) + extra)}


def run_nanogpt(checkout: Path, text: Path, steps: int, threads: int) -> dict:
    from bench_tinygpt_shakespeare import run_nanogpt as nanogpt_train  # its train.py on a temp copy, data prepared

    figures = nanogpt_train(checkout, text, threads=threads, extra_args=(f"--max_iters={steps}", f"--lr_decay_iters={steps}"))
    if "error" not in figures:
        figures["wall_tokens_per_s"] = round(steps * 768 / figures["wall_s"])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, default=None, help="a nanoGPT checkout (git clone of karpathy/nanoGPT)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Tiny Shakespeare text file")
    parser.add_argument("--rounds", type=int, default=1, help="A/B pairs (order flips each round)")
    parser.add_argument("--steps", type=int, default=2000, help="iterations for both (2000: the recipe; fewer for a quick speed check, val loss then not judged)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both (0: each program's own default, as a user runs it)")
    args = parser.parse_args()
    if args.nanogpt is None or not (args.nanogpt / "train.py").is_file():
        skipped("tinygpt_cli_vs_nanogpt", "no nanoGPT checkout: pass --nanogpt DIR (git clone https://github.com/karpathy/nanoGPT)")
        return 0
    if not args.data.is_file():
        skipped("tinygpt_cli_vs_nanogpt", f"{args.data} is missing: pass --data FILE (Tiny Shakespeare)")
        return 0
    sides = {"nanogpt": lambda: {"before": load(), **run_nanogpt(args.nanogpt, args.data, args.steps, args.threads)},
             "ours": lambda: {"before": load(), **run_ours(args.data, args.steps, args.threads)}}
    # Wall time counts everything a user waits for, start-up included: no warm-up round.
    both = alternate(sides, args.rounds, warmup=0)
    runs = []
    for nano, ours in zip(both["nanogpt"], both["ours"]):
        pair = {"nanogpt": nano, "ours": ours}
        if "error" not in nano and "error" not in ours:
            pair["tokens_per_s_ratio"] = round(ours["tokens_per_s"] / nano["tokens_per_s"], 2)
            pair["wall_ratio"] = round(ours["wall_s"] / nano["wall_s"], 3)
        runs.append(pair)
    good = [r for r in runs if "wall_ratio" in r]
    summary = {}
    if good:
        tps = statistics.median(r["tokens_per_s_ratio"] for r in good)
        wall = statistics.median(r["wall_ratio"] for r in good)
        val = max(r["ours"]["val_loss"] for r in good)
        summary = {"tokens_per_s_ratio": tps, "wall_ratio": wall, "val_loss_ours_max": val,
                   "met": {"tokens_per_s": tps >= TARGETS["tokens_per_s_ratio_min"], "wall": wall <= TARGETS["wall_ratio_max"],
                           "val_loss": val <= TARGETS["val_loss_max"] if args.steps == 2000 else None}}
    report("tinygpt_cli_vs_nanogpt", {"steps": args.steps, "threads": args.threads or "each program's default", "targets": TARGETS, "runs": runs, **summary})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

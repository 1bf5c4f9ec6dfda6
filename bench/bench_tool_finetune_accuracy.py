"""Held-out tool-name accuracy of the default model, before and after a LoRA fine-tune on the synthetic tool data.

Target: right tool on ≥ 80% of held-out prompts after fine-tuning (the base model's figure is reported too).
Prints one JSON object. Run: nice -n 10 .venv/bin/python bench/bench_tool_finetune_accuracy.py [--quick] [--keep=DIR] [--epochs=N] [--recipe=full]
The same recipe runs as the speedrun's fine-tune stage (llm_deeper.finetune.tool_recipe).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import progress, report


def main() -> None:
    from llm_deeper.finetune.tool_recipe import QUICK, RECIPES, run_tool_recipe
    from llm_deeper.models.loaders import load_model
    from llm_deeper.models.registry import DEFAULT_MODEL

    from dataclasses import asdict

    quick = "--quick" in sys.argv[1:]
    base = load_model(DEFAULT_MODEL)
    epochs = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--epochs=")), None)  # --epochs=N overrides the recipe
    keep = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--keep=")), None)  # --keep=DIR keeps data and adapter
    with tempfile.TemporaryDirectory() as folder:
        name = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--recipe=")), "speedrun")  # --recipe=full
        recipe = QUICK if quick else RECIPES[name]
        if epochs:
            from dataclasses import replace

            recipe = replace(recipe, epochs=epochs)
        run = run_tool_recipe(DEFAULT_MODEL, base, Path(keep or folder), recipe, log=progress)
    figures = {**run.figures(), "recipe": asdict(run.recipe), "sample after": run.after.samples[:3]}
    figures["target right tool after"] = 0.8
    figures["meets target"] = figures["right tool after"] >= 0.8
    report("tool_finetune_accuracy", {"model": DEFAULT_MODEL, "quick": quick, **figures})


if __name__ == "__main__":
    main()

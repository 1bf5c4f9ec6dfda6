"""Prepare the default model: GGUF in the wheel → cached HF folder → loaded."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "Prepare the default model"


def run(ctx: Context) -> StageResult:
    from ...models.embedded import is_prepared
    from ...models.inspect import count_parameters
    from ...models.loaders import load_model
    from ...models.registry import resolve

    ref = resolve(ctx.model)
    was_cached = ref.spec is None or is_prepared(ref.spec)
    loaded = load_model(ref, progress=ctx.log)
    ctx.state["loaded"] = loaded
    params = count_parameters(loaded.model)
    how = "cached folder" if was_cached else "converted from GGUF"
    return StageResult(
        headline=f"{loaded.ref.display_name}: {params / 1e6:.1f} M parameters, {how} in {loaded.seconds:.1f} s",
        metrics={"model": loaded.ref.display_name, "folder": loaded.folder, "parameters": f"{params:,}", "load": how, "load seconds": round(loaded.seconds, 2)},
    )

"""How many numbers does LoRA train?

After lesson hfcore/02 (LoRA). Write `solve(in_features, out_features, rank)` that
returns the number of trainable parameters LoRA adds to one linear layer
(A is rank × in, B is out × rank). Then use it: rank 16 on q, k, v and o of every
layer of SmolLM2-135M (width 576, 30 layers, 3 KV heads of 64, so k and v map
576 → 192).
"""

LESSON = "hfcore/02"
SIGNATURE = "def solve(in_features: int, out_features: int, rank: int) -> int"


def check(solve) -> None:
    import torch

    from llm_deeper.sizing import KNOWN, lora_parameters
    from llm_deeper.lesson import check
    from llm_deeper.scratch.lora import inject_lora, trainable_report

    for shape, rank in (((576, 576), 8), ((576, 192), 16), ((1536, 576), 4)):
        layer = torch.nn.Sequential()
        layer.add_module("proj", torch.nn.Linear(*shape, bias=False))
        inject_lora(layer, ["proj"], rank=rank)
        check(f"{shape[0]} → {shape[1]}, rank {rank}: equals our LoRALinear's trainable count", solve(*shape, rank) == trainable_report(layer).trainable, f"{solve(*shape, rank):,}")
    a = KNOWN["smollm2-135m"]
    per_layer = 2 * solve(576, 576, 16) + 2 * solve(576, 192, 16)
    check("rank 16 on q, k, v, o of SmolLM2-135M: equals llm_deeper.sizing.lora_parameters", a.layers * per_layer == lora_parameters(a, 16), f"{a.layers * per_layer:,}")
    check("a 576 × 576 projection at rank 8 trains 9,216 numbers instead of 331,776", solve(576, 576, 8) == 9216)

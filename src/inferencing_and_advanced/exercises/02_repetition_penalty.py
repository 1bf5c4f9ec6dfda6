"""The repetition penalty

After lesson inferencing_and_advanced/00 (the inference loop). Write
`solve(logits, seen, penalty)`: for every token id in `seen` (the prompt and the
reply so far), divide its logit by `penalty` if it is positive and multiply it if
it is negative, so the token always becomes less likely; leave the other logits
alone and do not change the input tensor.
"""

LESSON = "inferencing_and_advanced/00"
SIGNATURE = "def solve(logits: torch.Tensor, seen: list[int], penalty: float) -> torch.Tensor"


def check(solve) -> None:
    import torch

    from llm_deeper.inference.sampler import apply_penalties
    from llm_deeper.inference.sampling import SamplingConfig
    from llm_deeper.lesson import check

    torch.manual_seed(0)
    logits = torch.randn(50) * 4
    before = logits.clone()
    seen = [3, 7, 7, 11, 42]
    out = solve(logits, seen, 1.3)
    ref = apply_penalties(logits, SamplingConfig(repetition_penalty=1.3), prompt_ids=seen, output_counts={})
    check("equals the engine's rule (llm_deeper.inference.sampler)", torch.equal(out, ref))
    check("the input tensor is unchanged", torch.equal(logits, before))
    probs_before, probs_after = torch.softmax(before, -1), torch.softmax(out, -1)
    check("every seen token became less likely", all(probs_after[i] < probs_before[i] for i in set(seen)))
    check("penalty 1.0 changes nothing", torch.equal(solve(logits, seen, 1.0), logits))

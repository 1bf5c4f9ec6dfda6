"""Nucleus (top-p) filtering

After lesson inferencing_and_advanced/00 (the inference loop). Write `solve(logits, p)`
for a 1-D torch tensor of logits: return new logits where every token outside the
nucleus is −inf. The nucleus is the smallest set of most likely tokens whose
probabilities add up to at least p (the token that crosses p stays; the most
likely token always stays).
"""

LESSON = "inferencing_and_advanced/00"
SIGNATURE = "def solve(logits: torch.Tensor, p: float) -> torch.Tensor"


def check(solve) -> None:
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    from llm_deeper.lesson import check

    probs = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])
    logits = probs.log()
    kept = lambda out: sorted(torch.isfinite(out).nonzero().flatten().tolist())  # noqa: E731
    check("p = 0.6 keeps the two most likely tokens (0.5 + 0.2 crosses 0.6)", kept(solve(logits, 0.6)) == [0, 1])
    check("p = 0.1 keeps only the most likely token", kept(solve(logits, 0.1)) == [0])
    check("p = 1.0 keeps everything", kept(solve(logits, 1.0)) == [0, 1, 2, 3, 4])
    torch.manual_seed(0)
    for p in (0.3, 0.8, 0.95):
        random_logits = torch.randn(1000) * 3
        ref = TopPLogitsWarper(top_p=p)(None, random_logits[None].clone())[0]
        check(f"p = {p}: the same nucleus as transformers' TopPLogitsWarper on 1,000 random logits", kept(solve(random_logits, p)) == kept(ref))
    out = solve(logits, 0.6)
    check("kept tokens keep their logits (sampling renormalizes them)", torch.equal(out[:2], logits[:2]))

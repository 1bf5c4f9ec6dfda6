import torch


def solve(logits: torch.Tensor, p: float) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(-1) - probs  # the mass of the more likely tokens
    drop = mass_before >= p  # already enough without this token (never the first)
    return logits.scatter(0, order, sorted_logits.masked_fill(drop, float("-inf")))

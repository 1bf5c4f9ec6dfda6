import torch


def solve(logits: torch.Tensor, seen: list[int], penalty: float) -> torch.Tensor:
    out = logits.clone()
    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)
    values = out[ids]
    out[ids] = torch.where(values > 0, values / penalty, values * penalty)
    return out

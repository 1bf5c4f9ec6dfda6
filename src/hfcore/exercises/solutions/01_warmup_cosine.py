import math


def solve(step: int, peak: float, floor: float, warmup: int, decay_steps: int) -> float:
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    if step >= decay_steps:
        return floor
    progress = (step - warmup) / (decay_steps - warmup)
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - floor)

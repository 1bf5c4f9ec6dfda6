"""The learning-rate schedule: linear warmup, then a cosine down to a floor

After lesson hfcore/00 (TinyGPT). Write `solve(step, peak, floor, warmup, decay_steps)`
returning the learning rate of optimizer step `step` (counted from 0):
- during warmup (step < warmup): peak · (step + 1) / (warmup + 1), a straight climb;
- then, with progress = (step − warmup) / (decay_steps − warmup):
  floor + ½ · (1 + cos(π · progress)) · (peak − floor), half a cosine from peak to floor;
- after decay_steps: the floor.
"""

LESSON = "hfcore/00"
SIGNATURE = "def solve(step: int, peak: float, floor: float, warmup: int, decay_steps: int) -> float"


def check(solve) -> None:
    import math

    from llm_deeper.lesson import check
    from llm_deeper.train.schedule import warmup_cosine

    settings = (2e-3, 2e-4, 25, 250)
    rates = [solve(s, *settings) for s in range(300)]
    check("equals llm_deeper.train.schedule.warmup_cosine at every step 0..299",
          all(math.isclose(r, warmup_cosine(s, *settings), rel_tol=1e-12) for s, r in enumerate(rates)))
    check("it climbs during warmup", all(a < b for a, b in zip(rates[:25], rates[1:26])))
    check("it reaches the floor at decay_steps and stays there", all(math.isclose(r, 2e-4) for r in rates[250:]))
    check("halfway through the decay it is halfway between peak and floor", math.isclose(solve(25 + 225 // 2, *settings) * 1, (2e-3 + 2e-4) / 2, rel_tol=0.01))

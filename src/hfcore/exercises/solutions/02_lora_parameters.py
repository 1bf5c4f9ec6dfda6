def solve(in_features: int, out_features: int, rank: int) -> int:
    return rank * in_features + out_features * rank  # A: rank × in, B: out × rank

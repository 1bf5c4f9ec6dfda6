"""How long `llm-deeper --help` takes, against a bare Python start, side by side.

Prints one JSON object. The target is under 1 s: commands import torch and
transformers only when they run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

RUNS = 15


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    cli = [os.path.join(os.path.dirname(sys.executable), "llm-deeper"), "--help"]
    bare = [sys.executable, "-c", "pass"]
    timed(cli)  # warm the file cache
    samples = {"llm-deeper --help": [], "python -c pass": []}
    for _ in range(RUNS):  # alternate A and B so drift hits both alike
        samples["llm-deeper --help"].append(timed(cli))
        samples["python -c pass"].append(timed(bare))
    result = {
        "bench": "cli_startup",
        "runs": RUNS,
        **{f"{name} median s": round(statistics.median(v), 4) for name, v in samples.items()},
        **{f"{name} max s": round(max(v), 4) for name, v in samples.items()},
        "target s": 1.0,
    }
    result["meets target"] = result["llm-deeper --help max s"] < 1.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Check that imports inside `llm_deeper` point one way: down the layers of DESIGN.md, never up, no cycles.

    python tools/check_layers.py [src/llm_deeper]       # exit 1 and one line per upward import

Every module's imports are read from its source (the AST, imports inside
functions included: a lazy import is still a dependency). A unit is a
first-level module or package of `llm_deeper` (`SPLIT` could name a
package whose modules sit in different layers; the folders now follow the layers). A unit may import its own layer or a lower one; an import of a
higher layer is reported with the file and line. Within one layer, units must
not import each other in a cycle (also reported).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# Low to high (DESIGN.md, "Layers"). Each unit imports only its own layer or lower ones.
LAYERS = [
    ("foundation", {"scratch", "sizing", "errors", "paths", "ports", "hardware", "inputs"}),
    ("models and the prompt format", {"models", "chat_format", "tools"}),
    ("the engine", {"inference"}),
    ("the chat layer", {"chat"}),
    ("serving, the agent, evals, data", {"serve", "agent", "evals", "data", "chat_repl"}),
    ("training", {"train", "finetune"}),
    ("conversion, deployment, the CLI and the course", {"convert", "deploy", "speedrun", "commands", "cli", "cli_options", "lesson", "lessons", "exercises", "figures",
                                         "__main__", "__init__"}),
]
SPLIT: set[str] = set()  # packages whose modules sit in different layers (each module its own unit): none now


def unit_of(parts: tuple[str, ...]) -> str:
    """The unit of a module path inside the package, e.g. ("tools", "render") -> "tools.render"."""
    head = parts[0].removesuffix(".py")
    if head in SPLIT and len(parts) > 1:
        return f"{head}.{parts[1].removesuffix('.py')}"
    return head


def imports(root: Path):
    """(importing unit, imported unit, file, line) for every import of the package by itself."""
    package = root.name
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        here = unit_of(parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[tuple[str, ...]] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = list(parts[:-1])[: len(parts) - node.level] if node.level > 1 else list(parts[:-1])
                    module = base + (node.module.split(".") if node.module else [])
                    if node.module:
                        targets.append(tuple(module))
                    else:
                        targets += [tuple(module + [alias.name]) for alias in node.names]
                elif node.module and node.module.split(".")[0] == package:
                    module = node.module.split(".")[1:]
                    targets += [tuple(module)] if module else [(alias.name,) for alias in node.names]
            elif isinstance(node, ast.Import):
                targets += [tuple(alias.name.split(".")[1:]) for alias in node.names if alias.name.split(".")[0] == package]
            for target in targets:
                if not target:
                    continue
                if target[0] in SPLIT and len(target) == 1 and isinstance(node, ast.ImportFrom) and not node.module:
                    continue
                there = unit_of(target)
                if there != here and ((root / target[0]).is_dir() or (root / f"{target[0]}.py").is_file()):
                    yield here, there, path, node.lineno


def layer_of(unit: str) -> int | None:
    for number, (_, units) in enumerate(LAYERS):
        if unit in units:
            return number
    return None


def check(root: Path) -> list[str]:
    problems = []
    edges: dict[str, set[str]] = {}
    for here, there, path, line in imports(root):
        edges.setdefault(here, set()).add(there)
        low, high = layer_of(here), layer_of(there)
        where = f"{path.relative_to(root.parent)}:{line}"
        for unit, layer in ((here, low), (there, high)):
            if layer is None:
                problems.append(f"{unit} is in no layer: add it to LAYERS in tools/check_layers.py")
        if low is not None and high is not None and high > low:
            problems.append(f"{where}: {here} ({LAYERS[low][0]}) imports {there} ({LAYERS[high][0]}), a higher layer")
    problems += [f"cycle: {' -> '.join(cycle)}" for cycle in cycles(edges)]
    return sorted(set(problems))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One path around each cycle of units (depth-first search)."""
    found, state = [], {}

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = "open"
        for other in sorted(edges.get(unit, ())):
            if state.get(other) == "open":
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[unit] = "done"

    for unit in sorted(edges):
        if unit not in state:
            visit(unit, [unit])
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src" / "llm_deeper")
    problems = check(root)
    for line in problems:
        print(line)
    print(f"{len(problems)} import(s) against the layers of {root.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

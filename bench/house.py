"""The shape of the code: longest functions and import cycles, read with ast (no imports).

    python bench/house.py [SRC]      # default: src/pix2color of this checkout

Prints the 10 longest functions (lines, def to last line) and every import cycle between
pix2color modules (imports inside functions count too: they tie modules together just the same).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def imports(path: Path, modules: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), ignoring the edges
    between a package and its own submodules."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if v.startswith(w + ".") or w.startswith(v + "."):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def main(src: Path) -> None:
    files = {module_name(p, src): p for p in sorted(src.rglob("*.py"))}
    lines = sum(len(p.read_text().splitlines()) for p in files.values())
    fns = sorted(
        ((n, f"{files[m].relative_to(src)}:{line}", f"{name}") for m in files
         for name, line, n in functions(files[m])),
        reverse=True,
    )  # fmt: skip
    print(f"{src}: {len(files)} modules, {lines} lines\n")
    print("| lines | function | where |\n|---|---|---|")
    for n, where, name in fns[:10]:
        print(f"| {n} | {name} | {where} |")
    graph = {m: imports(p, set(files)) - {m} for m, p in files.items()}
    found = cycles(graph)
    print(f"\nimport cycles: {len(found)}")
    for comp in found:
        print("- " + ", ".join(comp))


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "src" / "pix2color"
    )

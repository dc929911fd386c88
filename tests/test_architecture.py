"""The house rules that keep pix2color readable, read from the code itself (ast, no imports)."""

from __future__ import annotations

import ast
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "pix2color"

# layers from the bottom up: a module may import its own layer and those below, never above
LAYERS = (
    ("pix2color.errors", "pix2color.files"),
    ("pix2color.color",),
    ("pix2color.photo",),
    ("pix2color.guide",),
    ("pix2color.data",),
    ("pix2color.eval.metrics", "pix2color.eval.lpips", "pix2color.eval.fid"),
    ("pix2color.models",),
    ("pix2color.train",),
    ("pix2color.inference",),
    ("pix2color.eval",),
    ("pix2color.web", "pix2color.commands"),
    ("pix2color.cli",),
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every pix2color module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("pix2color.")}


def layer(module: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    # `from pix2color.models.io import load_generator` names a function, not a module: keep
    # only names that are modules (or packages)
    return {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_every_module_has_a_layer():
    unplaced = [m for m in graph() if m != "pix2color" and layer(m) is None]
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"


def test_imports_run_one_way():
    upward = [
        f"{m} (layer {layer(m)}) imports {dep} (layer {layer(dep)})"
        for m, deps in graph().items()
        if m != "pix2color"  # the package's lazy `Colorizer` attribute is the public entry
        for dep in deps
        if layer(dep) is not None and layer(dep) > layer(m)
    ]
    assert not upward, "imports that run back up:\n" + "\n".join(upward)


def test_nobody_imports_the_cli_and_models_never_import_train_or_web():
    g = graph()
    assert not [m for m, deps in g.items() if "pix2color.cli" in deps]
    for m, deps in g.items():
        if m.startswith("pix2color.models"):
            assert not [d for d in deps if d.startswith(("pix2color.train", "pix2color.web"))], m
        if m.startswith("pix2color.web"):  # the web never reaches into the command line
            assert not [d for d in deps if d.startswith("pix2color.commands")], m


def test_no_import_cycles():
    g = graph()
    done: set[str] = set()

    def visit(m: str, stack: list[str]) -> None:
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(m) :], m]))
        if m in done:
            return
        for dep in g.get(m, ()):
            # a package's __init__ re-exporting its own modules is not a cycle through them
            if not m.startswith(dep + ".") and not dep.startswith(m + "."):
                visit(dep, [*stack, m])
        done.add(m)

    for m in g:
        visit(m, [])


def test_library_modules_hold_no_argparse():
    for path in SRC.rglob("*.py"):
        name = module_name(path)
        if name.startswith("pix2color.commands") or name == "pix2color.cli":
            continue
        assert "argparse" not in imports_of(path) | _plain_imports(path), name


def _plain_imports(path: Path) -> set[str]:
    return {
        a.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import)
        for a in node.names
    }


MAX_LINES = 450  # a module longer than this holds more than one concern: split it


def test_no_source_file_is_too_long():
    long = {
        module_name(p): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


# docs/vocabulary.md: names in code are spelt `color` and `gray`; prose says colour and grey.
# The names a saved file holds (config keys, report keys) are strings and stay as saved.
BRITISH = ("colour", "grey")


def test_names_in_code_use_one_spelling():
    found = set()
    for path in SRC.rglob("*.py"):
        with path.open("rb") as f:
            for tok in tokenize.tokenize(f.readline):
                if tok.type == tokenize.NAME and any(w in tok.string.lower() for w in BRITISH):
                    found.add(f"{module_name(path)}: {tok.string}")
    assert not found, f"names spelt colour/grey (docs/vocabulary.md says color/gray): {found}"

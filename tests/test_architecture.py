"""The package's shape (docs/architecture.md): layers that import only downward, and small modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cxrdata"

# Lowest first. A module imports from its own folder or from a lower layer; folders of one layer never
# import each other, except the ground modules (layer 0), which form one small vocabulary of terms.
LAYERS = (
    ("errors", "boxes", "stage", "records", "recipe", "vocabulary", "allocator", "yamlfiles"),
    ("io", "imaging", "text"),
    ("anatomy",),
    ("extract",),
    ("targets",),
    ("models",),
    ("sources", "sample", "inspect", "evaluate", "export"),
    ("pipeline", "train"),
    ("api",),
    ("cli",),
)
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}
MAX_LINES = 400


def part_of(module: str) -> str | None:
    """``cxrdata.io.layout`` -> ``io``; the package root itself -> None."""
    names = module.split(".")
    return names[1] if len(names) > 1 and names[0] == "cxrdata" else None


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        out.append((rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" else "", path))
    return out


def test_every_folder_has_a_layer():
    parts = {part for part, _ in modules() if part}
    assert parts <= set(LEVEL), f"folders or modules without a layer: {sorted(parts - set(LEVEL))}"


def test_imports_go_only_downward():
    wrong = []
    for part, path in modules():
        if not part:
            continue
        for line, module in imports(path):
            target = part_of(module)
            if target is None or target == part or target not in LEVEL:
                continue
            if LEVEL[target] == LEVEL[part] == 0:
                continue
            if LEVEL[target] >= LEVEL[part]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} "
                             f"({part} is layer {LEVEL[part]}, {target} layer {LEVEL[target]})")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_large():
    large = {str(p.relative_to(PACKAGE.parent)): n for _, p in modules()
             if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not large, f"modules over {MAX_LINES} lines: {large}"

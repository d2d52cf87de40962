"""The package stays readable: folders by stage, imports only downward, small modules and functions, no copy-paste."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "carmask"

#: Sub-packages from the bottom up: a module may import its own folder, the
#: top-level helpers (files, logs) and the folders before it, never one after.
LAYERS = ["planning", "masks", "network", "photos", "stages"]
#: The demo renderer stands apart: it writes masks with the project's RLE and
#: uses nothing else of the pipeline.
DEMO_IMPORTS = {"masks"}
TOP_LEVEL_HELPERS = {"files", "logs"}
MAX_MODULE_LINES = 410
MAX_FUNCTION_LINES = 60
REPEAT_LINES = 6


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    """The first name after ``carmask.`` of every package import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("carmask"):
            parts = node.module.split(".")
            found.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("carmask."))
    return found


@pytest.mark.parametrize("layer", [*LAYERS, "demo"])
def test_imports_run_only_downward(layer):
    below = DEMO_IMPORTS if layer == "demo" else LAYERS[: LAYERS.index(layer)]
    allowed = {layer, *TOP_LEVEL_HELPERS, *below}
    for path in (PACKAGE / layer).glob("*.py"):
        assert imported_packages(path) <= allowed, f"{path.relative_to(PACKAGE)} imports {imported_packages(path) - allowed}"


def test_top_level_helpers_import_no_stage():
    for name in TOP_LEVEL_HELPERS:
        assert imported_packages(PACKAGE / f"{name}.py") <= TOP_LEVEL_HELPERS


def test_the_flat_folder_holds_only_the_helpers_and_the_command_line():
    assert {p.stem for p in PACKAGE.glob("*.py")} == {"__init__", "cli", *TOP_LEVEL_HELPERS}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {*LAYERS, "demo"}


def test_modules_and_functions_stay_small():
    too_long = []
    for path in modules():
        text = path.read_text()
        # the demo renderer's parts are one car model, studio and dataset each
        if len(text.splitlines()) > MAX_MODULE_LINES and path.parent.name != "demo":
            too_long.append(f"{path.relative_to(PACKAGE)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long


def test_no_block_of_code_is_repeated():
    # Six consecutive statement lines (imports, blank lines and comments left
    # out) that appear twice anywhere in the package are copy-paste.
    seen: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in modules():
        lines = [
            (number, line.strip())
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if line.strip() and not line.strip().startswith(("#", "import ", "from ")) and len(line.strip()) > 3
        ]
        for k in range(len(lines) - REPEAT_LINES + 1):
            block = tuple(line for _, line in lines[k : k + REPEAT_LINES])
            seen[block].append(f"{path.relative_to(PACKAGE)}:{lines[k][0]}")
    repeated = {places[0]: places[1:] for places in seen.values() if len(places) > 1}
    assert not repeated


def test_benchmarks_and_studies_stand_apart_from_the_tests():
    # make bench runs benchmarks/; the one-off studies live in studies/; the
    # tests' independent references stay theirs (benchmarks/baselines.py holds
    # the speed baselines).
    root = PACKAGE.parents[1]
    assert {p.name for p in (root / "benchmarks").glob("*.py") if not p.name.startswith(("bench_", "_"))} == {"baselines.py"}
    for path in [*(root / "benchmarks").glob("*.py"), *(root / "studies").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "tests" or n.startswith("tests.") for n in names), f"{path.relative_to(root)} imports the tests"

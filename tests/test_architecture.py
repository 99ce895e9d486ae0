"""The rooms of the house import each other only one way (README, "Layout"), and no module
reaches into another package's private names: checked on the source, so a new import that
breaks the layout fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("em", "tasks", "flows", "warehouse", "sources", "audio", "analysis", "cli")

#: Packages each one must not import (what would point the dependency the wrong way).
FORBIDDEN = {
    "em": set(PACKAGES) - {"em"},  # pure numpy/scipy
    "tasks": {"warehouse", "flows", "cli"},  # tasks return data; flows hand it to the warehouse
    "warehouse": {"audio", "tasks", "flows", "analysis", "cli"},
    "analysis": {"warehouse", "tasks", "flows", "cli"},
    "sources": {"warehouse", "tasks", "flows", "analysis", "cli"},
    "audio": {"warehouse", "tasks", "flows", "analysis", "cli"},
    "flows": {"cli"},
}


def _imports(package: str):
    """(file, line, imported songmix module, imported names) of every songmix import in ``package``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("songmix."):
                yield path, node.lineno, node.module, [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("songmix."):
                        yield path, node.lineno, alias.name, []


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_no_room_it_must_not(package):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path, line, module, _ in _imports(package)
             if module.split(".")[1] in FORBIDDEN.get(package, set())]
    assert wrong == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_private_name_is_imported_from_another_package(package):
    wrong = []
    for path, line, module, names in _imports(package):
        if module.split(".")[1] == package:
            continue
        private = [name for name in names if name.startswith("_")]
        private += [part for part in module.split(".")[2:] if part.startswith("_")]
        if private:
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {private} from {module}")
    assert wrong == []


def test_the_checks_see_the_imports():
    assert any(module == "songmix.warehouse.store" for _, _, module, _ in _imports("flows"))

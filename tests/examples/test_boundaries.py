"""The SDK and the example shops reach Partnerloop only over HTTP: they import none of its code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["partnerloop_sdk", "examples"])
def test_the_package_imports_nothing_of_partnerloops_own_code(package: str) -> None:
    imported: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(f"{path.name}: {alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(f"{path.name}: {node.module}")
    assert imported, "nothing was read"
    offending = sorted(i for i in imported if i.split(": ")[1].split(".")[0] in {"partners", "api", "tests"})
    assert offending == []

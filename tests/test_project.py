"""Project-level contracts: settings documented, imports flowing one way, offline switches on."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from config import ROOT, Settings

LAYERS = {"config": 0, "vectorstore": 1, "prompts": 1, "ingest": 2, "app": 3}


def test_every_setting_is_described_and_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"`RAG_{name.upper()}`" in readme, f"RAG_{name.upper()} missing from README"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imports_flow_one_way() -> None:
    for package, level in LAYERS.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path) & LAYERS.keys():
                assert LAYERS[name] <= level, f"{path.relative_to(ROOT)} imports {name} (a layer above it)"
            if not path.is_relative_to(ROOT / "app" / "ui"):
                assert "gradio" not in _imports(path), f"{path.relative_to(ROOT)} imports gradio outside app/ui"


def test_offline_switches_are_set() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["ANONYMIZED_TELEMETRY"] == "False"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_llama_cpp_runs_the_portable_kernels() -> None:
    """The Makefile builds llama.cpp for x86-64-v3 (AVX2, no AVX-512) so every machine computes the same greedy
    answers; a build for the machine's own CPU (pip's default) would use AVX-512 where it exists."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "AVX2 = 1" in info and "FMA = 1" in info and "AVX512 = 1" not in info, info

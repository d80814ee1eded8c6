"""The README's model table is generated from the registry and must not go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_model_table_matches_registry() -> None:
    script = ROOT / "scripts" / "update_readme.py"
    spec = importlib.util.spec_from_file_location("update_readme", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() in (ROOT / "README.md").read_text(), \
        "README model table is stale: run python scripts/update_readme.py"

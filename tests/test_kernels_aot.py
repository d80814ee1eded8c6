"""The fused kernels compile for sm_90 (H100/H200) without a GPU, fit its shared memory, and
keep the 8-bit path free of register spills and on tensor cores.

Runs ``python -m vidsr.kernels.aot`` in a subprocess without ``TRITON_INTERPRET`` (the kernels
must be decorated for compilation, which the interpreter tests in this process prevent).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)


def test_kernels_compile_for_sm90() -> None:
    import triton

    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    if not (tools / "ptxas").is_file() or not (tools / "cuobjdump").is_file():
        pytest.skip("this triton ships no ptxas/cuobjdump")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    models = ["ecbsr-m4c16-x2", "ecbsr-m4c16-x2:stream", "ecbsr-m4c16-x2:wave",
              "esr-tr-k7c16-x2", "bicubic-x2"]
    proc = subprocess.run([sys.executable, "-m", "vidsr.kernels.aot", "--models", *models],
                          capture_output=True, text=True, env=env, timeout=600)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert len(rows) == 2 * len(models)
    for row in rows:
        assert "error" not in row, row
        assert row["fits"], row
        if row["path"].startswith("8-bit"):
            assert row["stack"] == 0 and row["local"] == 0, f"register spills: {row}"
            if not row["model"].startswith("bicubic"):
                assert row["tensor_core_ops"] > 0, row

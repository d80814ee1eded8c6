"""Compile the fused kernels for a GPU target without a GPU, and report their resource use.

``python -m vidsr.kernels.aot [--arch 90]`` builds each kernel wrapper's real launch plan (default
tile settings, the fp16 path for 8-bit and the fp32 path for 12-bit) for a set of models, compiles
it with Triton for ``sm_<arch>`` and prints one JSON line per kernel: registers per thread, spill
stack, shared memory, and the count of tensor-core (wgmma/mma) instructions. Triton's own ``ptxas``
and ``cuobjdump`` do the work, so CI catches kernels that would not compile, would spill or would
need more shared memory than the chip has, before any GPU sees them. Must run without
``TRITON_INTERPRET`` (the kernels must be decorated for compilation).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

_TYPES = {torch.uint8: "*u8", torch.uint16: "*u16", torch.float16: "*fp16",
          torch.bfloat16: "*bf16", torch.float32: "*fp32"}
SHARED_LIMIT = 232448  # bytes of shared memory one block may use on sm_90 (227 KiB)
CASES = ("ecbsr-m4c16-x2", "ecbsr-m4c16-x2:stream", "ecbsr-m4c16-x2:wave", "ecbsr-m4c8-x2",
         "ecbsr-m8c32-x4", "esr-max-k7c4-x2", "esr-tm-k7c16-x2", "esr-tr-k7c16-x2",
         "esr-tr-k7c12-x3", "bicubic-x2")


def _tool(name: str) -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name)


def compile_plan(plan: tuple, arch: int) -> dict:
    """Compile one ``(kernel, grid, args, constexprs)`` plan for ``sm_<arch>``; its resources."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel, _grid, args, consts = plan
    consts = dict(consts)
    num_warps = consts.pop("num_warps", 4)
    names = [n for n in kernel.arg_names if n not in consts]
    signature = {}
    for name, value in zip(names, args, strict=True):
        if isinstance(value, torch.Tensor):
            signature[name] = _TYPES[value.dtype]
        else:
            signature[name] = "fp32" if isinstance(value, float) else "i32"
    signature.update({n: "constexpr" for n in consts})
    src = ASTSource(fn=kernel, signature=signature, constexprs=consts)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": num_warps})
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "k.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        usage = subprocess.run([_tool("cuobjdump"), "-res-usage", str(cubin)],
                               capture_output=True, text=True, check=True).stdout
    found = dict(re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", usage))
    ptx = compiled.asm["ptx"]
    return {"kernel": kernel.__name__, "num_warps": num_warps, "regs": int(found["REG"]),
            "stack": int(found["STACK"]), "local": int(found["LOCAL"]),
            "shared": int(compiled.metadata.shared),
            "tensor_core_ops": ptx.count("wgmma.mma_async") + ptx.count("mma.sync"),
            **{k: v for k, v in consts.items() if k in ("ROWS", "PW", "PH", "BH", "BW", "PREC")}}


def plans(name: str, dtype: torch.dtype) -> tuple:
    """The launch plan of ``name``'s fused callable on a 1080p frame with compute ``dtype``
    (``NAME:stream``, ``NAME:wave``: an ECBSR model's line-buffer or wavefront kernel)."""
    from .. import load_model
    from ..imresize import phase_kernels
    from .bicubic import PolyphaseUpscaler
    from .ecbsr import FusedPlainSR
    from .edgesr import FusedEdgeSR

    bit_depth = 8 if dtype == torch.float16 else 12
    itype = torch.uint8 if bit_depth == 8 else torch.uint16
    frames = torch.zeros(1, 1080, 1920, dtype=itype)
    if name.startswith("bicubic"):
        taps = phase_kernels(2)
        fn = PolyphaseUpscaler(2, taps, taps)
    else:
        name, _, variant = name.partition(":")
        model = load_model(name, pretrained=False)
        if name.startswith("ecbsr"):
            fn = FusedPlainSR(model, dtype=dtype, **({"variant": variant} if variant else {}))
        else:
            fn = FusedEdgeSR(model, dtype=dtype)
    result = torch.zeros(1, 1080 * fn.scale, 1920 * fn.scale, dtype=itype)
    return fn.plan(frames, result, bit_depth)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidsr.kernels.aot", description=__doc__)
    parser.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 90, 80")
    parser.add_argument("--models", nargs="+", default=list(CASES))
    args = parser.parse_args(argv)
    from .runtime import kernels_interpreted

    if kernels_interpreted():
        sys.stderr.write("unset TRITON_INTERPRET: the interpreter cannot compile kernels\n")
        return 2
    failed = 0
    for name in args.models:
        for dtype in (torch.float16, torch.float32):
            path = "8-bit fp16" if dtype == torch.float16 else "12-bit fp32"
            row = {"model": name, "path": path, "arch": args.arch}
            try:
                row.update(compile_plan(plans(name, dtype), args.arch))
                row["fits"] = row["shared"] <= SHARED_LIMIT
            except Exception as exc:  # noqa: BLE001 (reported per kernel; the rest still run)
                row["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                failed += 1
            sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

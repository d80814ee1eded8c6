"""The bf16 ECBSR PReLU three ways, in one process, on the banded CPU runner.

Eager ``max(z, a*z)`` (two passes), inductor's default compile (its Python wrapper calls the
kernel with the GIL held) and the C++-wrapper compile ``vidsr.engine.cpu_prelu`` uses (the GIL
released), each on ecbsr-m4c16-x2 with one band per core, alternating for ``--rounds`` rounds;
medians in ms per frame. Needs a CPU with native bf16 dot products.

    python scripts/bench_prelu.py [--sizes 640x480 1920x1080] [--rounds 6]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import vidsr
from vidsr.engine import cpu_prelu
from vidsr.engine.cpu import bf16_supported, cpu_runner, tune_malloc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ecbsr-m4c16-x2")
    p.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"])
    p.add_argument("--rounds", type=int, default=6)
    a = p.parse_args()
    if not bf16_supported():
        print("this CPU has no native bf16 dot products: ECBSR runs fp32, with no PReLU compile")
        return 1
    tune_malloc()
    model = vidsr.load_model(a.model)
    # the runners first: they set torch's threads to 1, which the compiles must see (another
    # thread count fails dynamo's guards and recompiles on the first call)
    eager = cpu_runner(model, bf16=True)
    compiled = cpu_runner(model, bf16=True, compile_after=1)
    t0 = time.perf_counter()
    cpu_prelu.start_compile()
    cpu_prelu.wait()
    print(f"C++-wrapper compile: {time.perf_counter() - t0:.1f} s")
    if not cpu_prelu.compiled():
        print(f"the compile failed: {cpu_prelu._error}")
        return 1
    wrapped = cpu_prelu._compiled
    t0 = time.perf_counter()
    held = cpu_prelu.compile_prelu(cpp_wrapper=False)
    print(f"default compile: {time.perf_counter() - t0:.1f} s")
    print(f"{a.model}, {compiled.backend}, medians of {a.rounds} alternating rounds")
    forms = {"eager": (eager, None), "GIL held": (compiled, held),
             "C++ wrapper": (compiled, wrapped)}
    for size in a.sizes:
        w, h = (int(v) for v in size.split("x"))
        x = torch.rand(1, 1, h, w)
        calls = max(1, round(8 * 640 * 480 / (w * h)))
        times: dict[str, list[float]] = {k: [] for k in forms}
        with torch.inference_mode():
            for runner, fn in forms.values():
                cpu_prelu._compiled = fn or wrapped
                runner(x)
            for _ in range(a.rounds):
                for k, (runner, fn) in forms.items():
                    cpu_prelu._compiled = fn or wrapped
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        runner(x)
                    times[k].append((time.perf_counter() - t0) / calls * 1e3)
        cpu_prelu._compiled = wrapped
        base = statistics.median(times["eager"])
        for k, v in times.items():
            ms = statistics.median(v)
            print(f"{size:>9s} {k:12s} {ms:7.1f} ms  x{base / ms:4.2f}  "
                  f"({', '.join(f'{t:.0f}' for t in v)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

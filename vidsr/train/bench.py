"""``vidsr bench --train``: the cost of one ECBSR training step, branch by branch vs merged online.

Both forms hold the same parameters and compute the same function and gradients
(``vidsr.models.ecbsr``); they differ only in arithmetic. Each step here is what ``vidsr train``
does per step on the model: forward on a batch of LR patches, L1 against the HR patch, backward,
Adam. The two forms are timed in alternating rounds in one process, so a load that changes during
the run weighs on both, and the report gives the median round of each and their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..engine.bench import sync, text_table
from ..errors import InputError
from ..registry import parse_name

DEFAULT_TRAIN_MODELS = ("ecbsr-m4c16-x2", "ecbsr-m4c8-x2", "ecbsr-m4c16-x3", "ecbsr-m4c16-x4")


def _run_steps(net: torch.nn.Module, opt: torch.optim.Optimizer, lr: torch.Tensor,
               hr: torch.Tensor, n: int) -> float:
    """Milliseconds per step over ``n`` training steps."""
    sync(lr.device)
    t0 = time.perf_counter()
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        F.l1_loss(net(lr), hr).backward()
        opt.step()
    sync(lr.device)
    return (time.perf_counter() - t0) * 1e3 / n


def train_step_bench(names: tuple[str, ...], device: torch.device, batch: int, patch: int,
                     steps: int = 10, rounds: int = 5,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Median milliseconds per training step of each ECBSR in ``names``, both forms."""
    if batch < 1 or patch < 4 or steps < 1 or rounds < 1:
        raise InputError("--train needs batch >= 1, patch >= 4, steps >= 1 and rounds >= 1")
    rows = []
    for name in names:
        spec = parse_name(name)
        if spec.family != "ecbsr":
            raise InputError(f"--train times ECBSR training forms; {spec.name} is {spec.family}")
        gen = torch.Generator().manual_seed(0)
        lr = torch.rand(batch, 1, patch, patch, generator=gen).to(device)
        hr = torch.rand(batch, 1, patch * spec.scale, patch * spec.scale, generator=gen).to(device)
        nets, opts = {}, {}
        for form, online in (("branches", False), ("merged", True)):
            torch.manual_seed(0)
            net = spec.build(training=True).to(device).train()
            for block in net.blocks:
                block.online_merge = online
            nets[form], opts[form] = net, torch.optim.Adam(net.parameters(), lr=1e-4)

        if progress:
            progress(f"{spec.name} training step, batch {batch} of {patch}x{patch} on {device}")
        for form in nets:
            _run_steps(nets[form], opts[form], lr, hr, 3)  # warm-up: allocator, kernels, Adam
        times: dict[str, list[float]] = {form: [] for form in nets}
        for _ in range(rounds):
            for form in nets:
                times[form].append(_run_steps(nets[form], opts[form], lr, hr, steps))
        branches = statistics.median(times["branches"])
        merged = statistics.median(times["merged"])
        rows.append({"model": spec.name, "branches_ms": round(branches, 2),
                     "merged_ms": round(merged, 2), "speedup": round(branches / merged, 2)})
    return {"device": str(device), "batch": batch, "lr_patch": patch, "steps": steps,
            "rounds": rounds, "threads": torch.get_num_threads(), "rows": rows}


def format_train_bench(report: dict[str, Any]) -> str:
    head = ["model", "branches ms/step", "merged ms/step", "speedup"]
    rows = [[r["model"], f"{r['branches_ms']:.2f}", f"{r['merged_ms']:.2f}", f"{r['speedup']:.2f}x"]
            for r in report["rows"]]
    title = (f"ECBSR training step on {report['device']} ({report['threads']} threads), batch "
             f"{report['batch']} of {report['lr_patch']}x{report['lr_patch']} LR patches, "
             f"L1 + backward + Adam; median of {report['rounds']} alternating rounds of "
             f"{report['steps']} steps")
    return title + "\n" + text_table(head, rows)

"""``vidsr models``: the model table."""

from __future__ import annotations

import argparse
import json


def rows() -> list[dict]:
    """One row per model in the table, with shipped-weights facts where they exist."""
    from ..errors import ModelNotFoundError
    from ..registry import FAMILIES, count_params, macs_per_pixel, parse_name, table
    from ..weights import manifest

    shipped = manifest()
    specs = table()
    listed = {spec.name for spec in specs}
    # a model shipped with `vidsr train --ship` outside the table (any name in the grammar)
    # is listed too: it was shipped, registered and measured, and then nowhere to be seen
    for name in sorted(set(shipped) - listed):
        try:
            specs.append(parse_name(name))
        except ModelNotFoundError:
            continue
    specs.sort(key=lambda sp: (FAMILIES.index(sp.family), sp.scale, sp.name not in listed,
                               sp.name))
    out = []
    for spec in specs:
        module = spec.build()
        entry = shipped.get(spec.name)
        metrics = entry.metrics if entry else {}
        out.append({
            "name": spec.name,
            "alias": spec.alias or "",
            "family": spec.family,
            "scale": spec.scale,
            "params": count_params(module),
            "macs_per_pixel": macs_per_pixel(module, spec.scale),
            "weights": "shipped" if entry else ("n/a" if not spec.trainable else "-"),
            "set5_psnr": metrics.get("Set5", {}).get("psnr"),
            "set14_psnr": metrics.get("Set14", {}).get("psnr"),
        })
    return out


def format_table(data: list[dict], markdown: bool = False) -> str:
    head = ["name", "alias", "params", "MACs/px", "weights", "Set5 PSNR", "Set14 PSNR"]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    body = [[r["name"], r["alias"] or "-", str(r["params"]), f"{r['macs_per_pixel']:.0f}",
             r["weights"], fmt(r["set5_psnr"]), fmt(r["set14_psnr"])] for r in data]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    from ..engine.bench import text_table

    return text_table(head, body)


def run(args: argparse.Namespace) -> int:
    data = rows()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_table(data, markdown=args.markdown))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models, their cost and measured quality")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON instead of a table")
    form.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=run)

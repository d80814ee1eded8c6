"""Regenerate the README's model table from the registry (`vidsr models --markdown`).

Run after shipping weights or recording metrics: `python scripts/update_readme.py`.
`tests/test_readme.py` fails while the README's table differs from the registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidsr.cli.cmd_models import format_table, rows

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- models:start -->", "<!-- models:end -->"


def render() -> str:
    return f"{START}\n{format_table(rows(), markdown=True)}\n{END}"


def main() -> int:
    p = argparse.ArgumentParser(description="Regenerate the README's model table from the "
                                "registry.")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when the table is out of date")
    args = p.parse_args()
    text = README.read_text()
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    new = head + render() + tail
    if args.check:
        same = new == text
        print(f"the model table in {README} is {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    README.write_text(new)
    print(f"updated the model table in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``vidsr export MODEL -o OUT.onnx|OUT.pt2``: a deploy model for other runtimes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import write_json
from . import check_json_output


def run(args: argparse.Namespace) -> int:
    from ..api import is_weights_path
    from ..export import default_output, export_model

    out = Path(args.output) if args.output else default_output(args.model, args.io)
    check_json_output(args.json, avoid=[out, args.model if is_weights_path(args.model) else ""])
    report = export_model(args.model, out, io=args.io, opset=args.opset,
                          check=not args.no_check, overwrite=args.overwrite)
    print(report.describe())
    if args.json:
        write_json(args.json, report.as_dict())
    return 0


#: ``vidsr.export.IO_BITS``'s keys, named here so that the parser does not import torch (a test
#: holds the two together).
IO_KINDS = ("float", "uint8", "uint10", "uint12")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a model to ONNX or a torch.export program",
        description="Export a model's deploy network for other runtimes: .onnx (onnxruntime, "
                    "TensorRT, OpenVINO; needs the onnx, onnxscript and onnxruntime packages) "
                    "or .pt2 (plain PyTorch: torch.export.load(path).module()). "
                    "N x 1 x H x W luma in, N x 1 x sH x sW out, batch and size dynamic. "
                    "The file is run against PyTorch on two input sizes before it is kept.")
    p.add_argument("model", metavar="MODEL", help="a model name or alias (see 'vidsr models') "
                   "or a .safetensors weights file")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the file to write, .onnx or .pt2 (default: the model's or weights file's "
                        "name, with the io kind unless float, .onnx, in this folder)")
    p.add_argument("--io", choices=IO_KINDS, default="float",
                   help="float: planes in [0, 1] (default); uint8/uint10/uint12: integer code "
                        "values in and out (uint16 above 8 bits), rounded and clipped in the "
                        "graph as vidsr's engines do")
    p.add_argument("--opset", type=int, metavar="N",
                   help="ONNX opset (18 up to what the installed onnx knows; default 18)")
    p.add_argument("--no-check", action="store_true",
                   help="skip running the exported file against PyTorch")
    p.add_argument("--json", metavar="FILE", help="also write what was done as JSON (- for stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=run)

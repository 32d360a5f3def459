"""Command line: ``python -m hdlgen <command>``.

User mistakes (HdlgenError) print one line, ``error: ...``, and exit with status 1; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import HdlgenError


def _add_model(p, required=False):
    p.add_argument("--model", default=None, required=required,
                   help="shipped model name (see `hdlgen models`) or path to a checkpoint .pt, IR .json or "
                        "QONNX .onnx (as Brevitas exports it) "
                        "(default: the default shipped model)")


def _add_folding(p):
    p.add_argument("--clock-mhz", type=float, default=None, metavar="F",
                   help="accelerator clock in MHz (default: the board's, 200)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fps", type=float, default=None, metavar="N",
                   help="target images per second; folding is chosen to reach it at the clock")
    g.add_argument("--folding", default=None, metavar="FILE",
                   help='JSON folding: {"in_lanes": L, "layers": {"fc0": {"pe": P, "simd": S}, ...}}')


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hdlgen", description="Compressed PyTorch networks to verified Verilog "
                                 "accelerators for Xilinx boards (KC705, ZCU104).")
    ap.add_argument("--version", action="version", version=f"hdlgen {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="command")

    b = sub.add_parser("build", help="emit Verilog, .mem files, Vivado project and report for a board",
                       description="Build an accelerator: Verilog core and memory files, board wrapper, XDC, "
                                   "Vivado non-project TCL, Yosys resource estimate and a report.")
    b.add_argument("--board", required=True, help="target board: kc705 or zcu104")
    _add_model(b)
    b.add_argument("--out", default=None, metavar="DIR", help="output directory (default: build/<board>)")
    _add_folding(b)
    b.add_argument("--no-synth", action="store_true", help="skip the Yosys synthesis estimate (faster)")
    b.add_argument("--force", action="store_true",
                   help="write into DIR even if it holds files hdlgen did not write")

    sub.add_parser("models", help="list the shipped models")

    e = sub.add_parser("eval", help="float PyTorch and golden integer accuracy on a test set")
    _add_model(e)
    e.add_argument("--data", required=True, metavar="DIR", help="dataset directory")
    e.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N test images")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("sim", help="run the emitted Verilog under Verilator against the golden model",
                       description="Simulate the accelerator under Verilator on test images: a run without "
                                   "stalls measures cycles per image and latency, a run with random input "
                                   "stalls and output backpressure checks every output again.")
    _add_model(s)
    s.add_argument("--board", default="kc705",
                   help="board whose budgets the automatic folding respects, as `build` does (default kc705)")
    s.add_argument("--data", default=None, metavar="DIR",
                   help="dataset directory (default: the test images shipped with the model)")
    s.add_argument("--images", default="200", metavar="N",
                   help="number of images, or `all` for the whole test set (default 200)")
    _add_folding(s)
    s.add_argument("--no-stalls", action="store_true", help="skip the run with random stalls")
    s.add_argument("--bench", choices=("harness", "cocotb"), default="harness",
                   help="compiled C++ stream harness (default) or the cocotb bench (same results, much slower)")
    s.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="harness processes to share the images (default 1); timing comes from the first's images")
    s.add_argument("--seed", type=int, default=1, help="seed of the random stalls")
    s.add_argument("--work", default=None, metavar="DIR", help="work directory (default: build/sim/<model>)")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    pr = sub.add_parser("predict", help="the golden model's labels for your own images",
                        description="Classify images with the golden (bit-exact integer) model. The images are "
                                    "a uint8 array 'x' in an .npz file, N x H x W x C, or N x H x W for one "
                                    "channel. Prints one label per line, or with --json {\"labels\": [...]}.")
    _add_model(pr)
    pr.add_argument("--images", required=True, metavar="FILE.npz", help="npz file with a uint8 array 'x'")
    pr.add_argument("--json", action="store_true", help='print {"labels": [...]}')

    t = sub.add_parser("train", help="train a recipe from models/ (see hdlgen/nn/train.py)")
    t.add_argument("rest", nargs=argparse.REMAINDER)
    return ap


def main(argv=None) -> int:
    ap = parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        from .nn.train import cli_train
        handler, args = cli_train, argv[1:]
    else:
        args = ap.parse_args(argv)
        if args.command is None:
            ap.print_help()
            return 2
        if args.command == "build":
            from .build.flow import cli_build as handler
        elif args.command == "models":
            from .build.flow import cli_models as handler
        elif args.command == "predict":
            from .predict import cli_predict as handler
        elif args.command == "eval":
            from .evaluate_cli import cli_eval as handler
        else:
            from .build.sim_command import cli_sim as handler
    try:
        return handler(args) or 0
    except HdlgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

"""``bsp export``: block patterns, quantized weights, tile stream and golden vectors for RTL teams."""

from __future__ import annotations

import argparse
import sys

EXAMPLE = """examples:
  bsp export --model runs/minilm-16x16-col-0.8 --config asic-32x32-int8 --out rtl/ --testbench cocotb,sv
  python rtl/tb/run_cocotb.py        # or: bash rtl/tb/run_sv.sh  -- every layer on the reference array
  bsp export --model runs/m --config fpga-zcu102 --out rtl/ --layers 'layer\\.0\\.' \\
             --word-bits 64 --lane-order msb-first
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a pruned model for RTL", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", required=True, help="directory written by bsp prune / save_pruned")
    p.add_argument("--config", required=True, help="accelerator preset or YAML (sets the tile stream)")
    p.add_argument("--out", required=True, help="output directory: new, empty, or an earlier bsp export "
                   "with --overwrite (then replaced atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier bsp export in --out")
    p.add_argument("--layers", help="regex over weight names to export (default: every pruned layer)")
    p.add_argument("--word-bits", type=int, default=32, help="memory word width in bits (default 32)")
    p.add_argument("--value-bits", type=int, default=8, choices=[4, 8, 16], help="weight/activation bits")
    p.add_argument("--lane-order", default="lsb-first", choices=["lsb-first", "msb-first"],
                   help="where the first value of a word goes (default lsb-first)")  # fmt: skip
    p.add_argument("--scale", default="tensor", choices=["tensor", "block-row"], help="weight scale granularity")
    p.add_argument("--frac-bits", type=int, help="fixed-point weights with scale 2^-FRAC_BITS instead of max-abs")
    p.add_argument("--allow-saturation", action="store_true", help="clip out-of-range fixed-point weights")
    p.add_argument("--sample", help="text of the golden-vector sample")
    p.add_argument("--testbench", type=_testbenches, default=(),
                   help="comma-separated: cocotb (cocotb 2.1 bench + runner), sv (plain SystemVerilog benches); "
                        "writes rtl/ (the reference array) and tb/ into --out")  # fmt: skip
    p.add_argument("--psums", action="store_true", help="also write per-fold golden partial sums (psums.hex)")
    p.add_argument("--max-quant-error", type=float, metavar="FRACTION",
                   help="refuse when a layer's integer output differs from the float one by more than this "
                        "(relative, e.g. 0.05); layers over 10%% are warned about either way")  # fmt: skip
    p.set_defaults(run=run)


def _testbenches(text: str) -> tuple[str, ...]:
    from hwsim.export.testbench import TESTBENCHES

    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [kind for kind in kinds if kind not in TESTBENCHES]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: {', '.join(TESTBENCHES)} (comma-separated)")
    return kinds


def run(args) -> int:
    import json
    import warnings

    from hwsim.export import DEFAULT_SAMPLE, ExportOptions, QuantErrorWarning, export_model
    from hwsim.export.readme import size_text

    if args.sample is not None and not args.sample.strip():
        raise ValueError("--sample: must be a non-empty text (leave --sample out for the default sentence)")
    options = ExportOptions(layers=args.layers, value_bits=args.value_bits, word_bits=args.word_bits,
                            lane_order=args.lane_order, scale_mode=args.scale, frac_bits=args.frac_bits,
                            allow_saturation=args.allow_saturation,
                            sample_text=DEFAULT_SAMPLE if args.sample is None else args.sample, psums=args.psums,
                            max_quant_error=args.max_quant_error, testbench=args.testbench)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuantErrorWarning)
        out = export_model(args.model, args.config, args.out, options, overwrite=args.overwrite)
    for warning in caught:
        if issubclass(warning.category, QuantErrorWarning):
            print(f"bsp export: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    manifest = json.loads((out / "manifest.json").read_text())
    layers = manifest["layers"]
    stored = sum(layer["storage"]["bcsr_bytes"] for layer in layers)
    dense = sum(layer["storage"]["dense_bytes"] for layer in layers)
    worst = max(layers, key=lambda layer: layer["quant_error"])
    print(f"exported {len(layers)} layers to {out}: {len(manifest['files'])} files, "
          f"{size_text(sum(entry['bytes'] for entry in manifest['files']))}; weights {size_text(stored)} as BCSR "
          f"(dense int{manifest['value_bits']}: {size_text(dense)}); largest quant error {worst['quant_error']:.1%} "
          f"({worst['dir']}); see {out / 'README.md'}")  # fmt: skip
    if manifest["testbench"]:
        runs = {"cocotb": f"python {out / 'tb' / 'run_cocotb.py'}", "sv": f"bash {out / 'tb' / 'run_sv.sh'}"}
        print("run the testbenches: " + "   or   ".join(runs[kind] for kind in manifest["testbench"]))
    return 0

"""``bsp export``: block patterns, quantized weights, tile stream and golden vectors for RTL teams."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  bsp export --model runs/minilm-16x16-col-0.8 --config asic-32x32-int8 --out rtl/
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
    p.set_defaults(run=run)


def run(args) -> int:
    from hwsim.export import DEFAULT_SAMPLE, ExportOptions, export_model

    options = ExportOptions(layers=args.layers, value_bits=args.value_bits, word_bits=args.word_bits,
                            lane_order=args.lane_order, scale_mode=args.scale, frac_bits=args.frac_bits,
                            allow_saturation=args.allow_saturation,
                            sample_text=args.sample or DEFAULT_SAMPLE)  # fmt: skip
    out = export_model(args.model, args.config, args.out, options, overwrite=args.overwrite)
    print(f"exported to {out} (manifest: {out / 'manifest.json'})")
    return 0

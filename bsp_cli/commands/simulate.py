"""``bsp simulate``: cycles, stalls and energy of a (pruned) encoder on an accelerator preset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bsp_cli.commands.options import bounded_int
from bsp_common import strict_json
from bsp_common.outputs import check_output_file, write_text_atomic
from bsp_common.units import format_energy_pj, format_seconds
from hwsim.simulate import MAX_FOLDS
from hwsim.workload import MAX_BATCH, MAX_SEQ_LEN

EXAMPLE = """examples:
  bsp simulate --config fpga-zcu102 --model runs/minilm-16x16-col-0.8
  bsp simulate --config asic-32x32-int8 --model minilm --seq-len 128 --csv ops.csv --trace trace.json
  bsp simulate --config my_array.yaml --hf-config bert-base-uncased --json   # a shipped config, offline
  bsp simulate --scalesim-cfg scale.cfg --topology gemms.csv --compat scalesim --json
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate a model on an accelerator", epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    arch = p.add_mutually_exclusive_group(required=True)
    arch.add_argument("--config", help="preset name (bsp configs list) or YAML path")
    arch.add_argument("--scalesim-cfg", help="SCALE-Sim .cfg file (array, dataflow, SRAM sizes, bandwidth)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="saved (pruned) model directory, or 'minilm'")
    source.add_argument("--hf-config", help="HF config.json of the model (dense unless --masks), or a shipped "
                        "model config by name, offline: bert-base-uncased, bert-large-uncased, roberta-base, "
                        "distilbert-base-uncased, all-MiniLM-L6-v2")
    source.add_argument("--topology", help="SCALE-Sim topology CSV (GEMM 'name, M, N, K,' or conv rows)")
    p.add_argument("--compat", choices=["scalesim"], help="report SCALE-Sim's dense, stall-free cycle counts")
    p.add_argument("--masks", help="block_masks.safetensors or a directory holding it (default: the model's)")
    p.add_argument("--seq-len", type=bounded_int("--seq-len", 1, MAX_SEQ_LEN), default=128,
                   help=f"tokens per sequence, 1..{MAX_SEQ_LEN} (default 128)")
    p.add_argument("--batch", type=bounded_int("--batch", 1, MAX_BATCH), default=1,
                   help=f"sequences per inference, 1..{MAX_BATCH} (default 1)")
    p.add_argument("--max-folds", type=bounded_int("--max-folds", 1, 10**12), default=MAX_FOLDS,
                   help=f"refuse workloads of more array folds than this (default {MAX_FOLDS:,}; time and memory "
                        "grow with folds)")
    p.add_argument("--csv", help="write the per-op table to this CSV file")
    p.add_argument("--trace", help="write a Chrome trace-event JSON (open in Perfetto)")
    p.add_argument("--json", action="store_true", help="print one JSON object with totals and ops")
    p.add_argument("--plot", help="per-layer stacked cycle bars to this file stem (PNG + SVG)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --csv/--trace/--plot files")
    p.set_defaults(run=run)


def _load_hf_config(args):
    """The model's dimensions from its config.json (json only: no transformers import)."""
    from hwsim.workload import read_hf_config
    from pruning.models import resolve_model_path

    if args.hf_config:
        try:
            return read_hf_config(args.hf_config)
        except FileNotFoundError as err:  # the message names the option, not the library call
            raise FileNotFoundError(f"--hf-config: {str(err).removeprefix('hf config: ')}") from None
    return read_hf_config(resolve_model_path(args.model))


def _load_masks(args):
    """Masks of --masks, or of a saved pruned --model (checked against its weights); {} means dense, said so."""
    from pruning.spec import MASKS_FILENAME, PRUNING_CONFIG_FILENAME

    if args.masks:
        from pruning.masks import load_masks

        return load_masks(args.masks)
    model_dir = Path(args.model) if args.model else None
    if model_dir and ((model_dir / MASKS_FILENAME).is_file() or (model_dir / PRUNING_CONFIG_FILENAME).is_file()):
        from pruning.io import load_pruned_masks  # torch: only for a pruned model

        return load_pruned_masks(model_dir)
    print(f"note: {args.model or args.hf_config} has no block masks: simulating the dense model", file=sys.stderr)
    return {}


def _check_outputs(args) -> None:
    outputs = (("--csv", args.csv, ()), ("--trace", args.trace, ()), ("--plot", args.plot, (".png", ".svg")))
    inputs = [getattr(args, name, None) for name in ("model", "masks", "hf_config", "config", "scalesim_cfg",
                                                     "topology")]  # fmt: skip
    inputs = [i for i in inputs if i and Path(i).exists()]  # preset names are not paths
    for option, value, suffixes in outputs:
        if value:
            others = [(o, v) for o, v, s in outputs if o != option and v and not s]
            check_output_file(value, overwrite=args.overwrite, option=option, suffixes=suffixes, inputs=inputs,
                              others=others)  # fmt: skip


def run(args) -> int:
    import pandas as pd

    from hwsim import build_workload, load_config, simulate
    from hwsim.design_cost import describe_cost
    from hwsim.scalesim import load_scalesim_config, load_scalesim_topology

    _check_outputs(args)  # before any model or workload is read
    config = load_scalesim_config(args.scalesim_cfg) if args.scalesim_cfg else load_config(args.config)
    if args.topology:
        workload = load_scalesim_topology(args.topology)
    else:
        workload = build_workload(_load_hf_config(args), _load_masks(args), batch=args.batch, seq_len=args.seq_len)
    if args.compat:
        return _print_scalesim_compat(config, workload, args)
    result = simulate(config, workload, trace=bool(args.trace), max_folds=args.max_folds)
    if args.csv:
        write_text_atomic(args.csv, result.ops.to_csv(index=False))
    if args.trace:
        result.write_trace(args.trace)
    if args.plot:
        from analysis.plots import layer_breakdown, save_figure

        save_figure(layer_breakdown(result.ops), Path(args.plot).with_suffix(""))
    if args.json:
        print(strict_json.dumps(result.to_json_dict()))
        return 0
    columns = ["cycles", "compute_cycles", "stall_cycles", "energy_pj", "macs_useful"]
    per_layer = result.per_layer()[columns]
    per_layer["utilization"] = per_layer["macs_useful"] / (per_layer["cycles"] * config.n_pes)  # all cycles
    with pd.option_context("display.width", 200):
        micro = config.microarch
        print(f"{config.name}: {config.pe_array.rows}x{config.pe_array.cols} {config.pe_array.dataflow.value}, "
              f"{config.clock_mhz:g} MHz, fold overlap {micro.fold_overlap.value}, pipeline "
              f"{micro.mult_stages}+{micro.acc_stages}, edges {micro.edge_skew.value}; "
              f"batch {args.batch} x seq {args.seq_len}")  # fmt: skip
        print(f"design: {describe_cost(config)}")
        from analysis.display import readable_table

        print(readable_table(per_layer).to_string())
    totals = result.totals
    print(
        f"total: {totals['cycles']:,} cycles ({format_seconds(totals['latency_s'])}) = compute "
        f"{totals['compute_cycles']:,} + stalls {totals['stall_cycles']:,} + first load "
        f"{totals['first_load_cycles']:,} + last stores {totals['last_store_cycles']:,}, "
        f"ideal {totals['ideal_cycles']:,}, utilization {totals['utilization']:.3f} of GEMM cycles "
        f"({totals['utilization_all_cycles']:.3f} of all cycles, as per layer above), "
        f"energy {format_energy_pj(totals['energy_pj'])}, {totals['tops_per_w']:.3f} TOPS/W"
    )
    return 0


def _print_scalesim_compat(config, workload, args) -> int:
    import pandas as pd

    from hwsim.scalesim import scalesim_cycles

    rows = [{"name": op.name, "M": op.M, "K": op.K, "N": op.N, "cycles": scalesim_cycles(op, config)}
            for op in workload.gemms]  # fmt: skip
    ops = pd.DataFrame(rows)
    if args.csv:
        write_text_atomic(args.csv, ops.to_csv(index=False))
    cycles = int(ops["cycles"].sum())
    macs = int((ops["M"] * ops["K"] * ops["N"]).sum())
    total = {"cycles": cycles, "latency_s": cycles / config.clock_hz, "energy_pj": None,
             "utilization": macs / (cycles * config.n_pes), "compat": "scalesim"}  # fmt: skip
    if args.json:
        print(strict_json.dumps({"total": total, "ops": rows}))
    else:
        print(ops.to_string(index=False))
        print(f"total (SCALE-Sim compatible, dense, stall-free): {cycles} cycles")
    return 0

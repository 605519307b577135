"""What `bsp export` writes for the shipped MiniLM: files, bytes, stored weights and quantisation error.

    python -m benchmarks.export_size [--granularity column] [--out benchmarks/out/export_size.json]

MiniLM (all-MiniLM-L6-v2, 36 prunable layers) pruned one-shot with 16x16 block magnitude at 2x and 4x
(no training: the export's sizes depend on the pattern, not on accuracy), exported for ``asic-32x32-int8``
at int8 and int4. Per point: file count and bytes, the weights' storage as BCSR, compacted (column/row
granularity) and dense, and the median / largest relative error of the integer path against the float
layer (before and after requantisation). Also prints one int8 layer directory's files with their sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.common import write_results

SPARSITIES = (0.5, 0.75)
VALUE_BITS = (8, 4)
CONFIG = "asic-32x32-int8"


def _pruned(root: Path, sparsity: float, granularity: str) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pruning import BlockPruner, PruneSettings, save_pruned
    from pruning.models import resolve_model_path

    path = resolve_model_path("minilm")
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    settings = PruneSettings(block="16x16", granularity=granularity, method="score", target_sparsity=sparsity)
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    pruner.prune()
    return save_pruned(root / f"minilm-{sparsity}", model, pruner.finalize(), settings,
                       tokenizer=AutoTokenizer.from_pretrained(path))  # fmt: skip


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def run(granularity: str) -> tuple[list[dict], list[dict]]:
    from hwsim.export import ExportOptions, export_model

    rows, layer_files = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sparsity in SPARSITIES:
            model_dir = _pruned(root, sparsity, granularity)
            for bits in VALUE_BITS:
                start = time.perf_counter()
                options = ExportOptions(progress=False, value_bits=bits, testbench=("cocotb", "sv"))
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    out = export_model(model_dir, CONFIG, root / f"export-{sparsity}-{bits}", options)
                seconds = time.perf_counter() - start
                manifest = json.loads((out / "manifest.json").read_text())
                layers, files = manifest["layers"], manifest["files"]
                compact = [layer["storage"]["compact_bytes"] for layer in layers]
                rows.append({
                    "sparsity": sparsity, "value_bits": bits, "layers": len(layers), "files": len(files),
                    "bytes": sum(entry["bytes"] for entry in files), "seconds": round(seconds, 1),
                    "bcsr_bytes": sum(layer["storage"]["bcsr_bytes"] for layer in layers),
                    "compact_bytes": None if None in compact else sum(compact),
                    "dense_bytes": sum(layer["storage"]["dense_bytes"] for layer in layers),
                    "quant_error_median": _median([layer["quant_error"] for layer in layers]),
                    "quant_error_max": max(layer["quant_error"] for layer in layers),
                    "requant_error_median": _median([layer["requant_error"] for layer in layers]),
                    "requant_error_max": max(layer["requant_error"] for layer in layers),
                    "warned": any("integer outputs differ" in str(w.message) for w in caught),
                })  # fmt: skip
                if bits == 8 and not layer_files:
                    first = layers[0]["dir"]
                    layer_files = [{"file": entry["path"].split("/", 1)[1], "bytes": entry["bytes"]}
                                   for entry in files if entry["path"].startswith(first + "/")]  # fmt: skip
    return rows, layer_files


def _mib(count: int | None) -> str:
    return "-" if count is None else f"{count / 2**20:.2f}"


def table(rows: list[dict], layer_files: list[dict]) -> str:
    lines = ["| sparsity | bits | files | MiB | weights BCSR / compacted / dense MiB | quant error median / max | "
             "requant error median / max | warned | s |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['sparsity']} | int{r['value_bits']} | {r['files']:,} | {r['bytes'] / 2**20:.1f} | "
                     f"{_mib(r['bcsr_bytes'])} / {_mib(r['compact_bytes'])} / {_mib(r['dense_bytes'])} | "
                     f"{r['quant_error_median']:.1%} / {r['quant_error_max']:.1%} | "
                     f"{r['requant_error_median']:.1%} / {r['requant_error_max']:.1%} | {r['warned']} | "
                     f"{r['seconds']} |")  # fmt: skip
    lines += ["", "one int8 layer directory (2x):", ""] + [f"  {f['file']:26s} {f['bytes']:>10,}" for f in layer_files]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--granularity", default="column", choices=["block", "column", "row"])
    parser.add_argument("--out", default="benchmarks/out/export_size.json")
    args = parser.parse_args(argv)
    rows, layer_files = run(args.granularity)
    print(table(rows, layer_files))
    write_results(args.out, {"granularity": args.granularity, "config": CONFIG, "rows": rows,
                             "layer_files": layer_files})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

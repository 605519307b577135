"""CLI start-up and end-to-end ``bsp simulate`` time (each a fresh process: what a user waits for).

    python -m benchmarks.cli_startup [--out benchmarks/out/cli_startup.json]

Medians of 3 runs of ``bsp --help``, ``bsp configs list`` and ``bsp simulate`` on a dense BERT-base config
(12 layers, seq 128, batch 1) on ``asic-32x32-int8``, each in a new Python process, and whether the process
imported torch (it must not for these commands).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_results

BERT_BASE = {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "vocab_size": 30522}  # fmt: skip
PROBE = """import sys, runpy
sys.argv = ["bsp", *sys.argv[1:]]
try:
    runpy.run_module("bsp_cli", run_name="__main__")
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH", file=sys.stderr)
"""


def _run(argv: list[str]) -> tuple[float, bool]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300)
    return time.perf_counter() - start, "NO-TORCH" not in proc.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/cli_startup.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(BERT_BASE))
        commands = {"bsp --help": ["--help"], "bsp configs list": ["configs", "list"],
                    "bsp simulate BERT-base": ["simulate", "--config", "asic-32x32-int8", "--hf-config", str(config),
                                               "--json"]}  # fmt: skip
        rows = []
        for label, command in commands.items():
            runs = [_run(command) for _ in range(3)]
            rows.append({"command": label, "median_s": statistics.median(t for t, _ in runs),
                         "imports_torch": any(torch for _, torch in runs)})  # fmt: skip
    print(f"{'command':<24} {'median s':>9} {'torch?':>7}")
    for row in rows:
        print(f"{row['command']:<24} {row['median_s']:>9.2f} {row['imports_torch']!s:>7}")
    write_results(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run one page's blocks in the current directory: ``python docs_driver.py BLOCKS.json`` (see docs_blocks).

A separate process per page, so that a page's imports, globals and working directory are its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from pathlib import Path


def main(blocks_file: str) -> int:
    namespace: dict = {"__name__": "__main__"}
    for block in json.loads(Path(blocks_file).read_text()):
        start = time.perf_counter()
        if block["directive"] == "file":
            target = Path(block["argument"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block["code"])
        elif block["language"] == "python":
            try:
                exec(compile(block["code"], block["where"], "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                print(f"FAILED: python block at {block['where']}", file=sys.stderr)
                return 1
        else:
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]])
            if done.returncode != 0:
                print(f"FAILED: bash block at {block['where']} (exit {done.returncode})", file=sys.stderr)
                return 1
        print(f"docs-block {block['where']} {block['language']} {time.perf_counter() - start:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

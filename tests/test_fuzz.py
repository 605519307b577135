"""Property-based fuzzing of every loader and CLI entry point (hypothesis).

Properties: a loader either returns a valid object or raises ``ValueError``/``FileNotFoundError`` with a bounded
message (never another exception); a CLI call exits 0 or 2 (never a traceback / exit 1); nothing outside the
case's own directory is written and no file that existed before a call is changed or deleted. Every case
runs in a fresh temporary directory. Set ``BSP_FUZZ_REPORT=path.json`` to write the count of cases tried and
exit codes seen.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from conftest import tiny_classifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.space import load_space
from bsp_cli import main
from hwsim import load_config
from hwsim.config import ConfigError, config_from_dict
from hwsim.scalesim import load_scalesim_topology
from pruning.masks import load_masks, save_masks

MAX_MESSAGE_CHARS = 4000  # an error message quotes values shortly, whatever the input
FUZZ = settings(max_examples=int(os.environ.get("BSP_FUZZ_EXAMPLES", "150")), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
TALLY: Counter = Counter()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["256 KiB", "1e25", "ws", "os", "is", "asic", "fpga", "-1", "0", ".inf", "1 TiB"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)  # fmt: skip


def _leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, (*prefix, key))
    yield prefix


PRESET = yaml.safe_load(load_config("fpga-zcu102").to_yaml())
PATHS = [p for p in _leaf_paths(PRESET) if p]


def _mutated(data: dict, path: tuple, value) -> dict:
    data = json.loads(json.dumps(data))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    report = os.environ.get("BSP_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(dict(sorted(TALLY.items())), indent=2))


@contextmanager
def _case_dir(user_file_may_change: bool = False):
    """A fresh directory with a user file in it, as the cwd; yields it; checks the user file is untouched
    (unless the case named it as an output with ``--overwrite``)."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="bsp-fuzz-") as tmp:
        root = Path(tmp)
        (root / "user.txt").write_text("precious")
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(old)
        assert user_file_may_change or (root / "user.txt").read_text() == "precious"


def _cli(argv: list[str], capsys) -> int:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse rejects options with exit 2
        code = stop.code
    err = capsys.readouterr().err
    assert code in (0, 2), f"exit {code} for {argv}: {err[-2000:]}"
    assert "Traceback" not in err
    TALLY[f"{argv[0]} exit {code}"] += 1
    return code


@FUZZ
@given(path=st.sampled_from(PATHS), value=values)
def test_config_field_mutations_validate_or_name_the_field(path, value):
    TALLY["config mutations"] += 1
    try:
        config = config_from_dict(_mutated(PRESET, path, value))
    except ConfigError as err:
        assert len(str(err)) < MAX_MESSAGE_CHARS
        assert err.errors and all(isinstance(p, str) and p for p, _ in err.errors)
        return
    for number in (config.clock_mhz, config.energy.mac_pj, config.dram_bytes_per_cycle):
        assert math.isfinite(number) and number >= 0


@FUZZ
@given(text=st.one_of(st.text(max_size=300), values.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
def test_configs_validate_cli_on_arbitrary_yaml(text, capsys):
    with _case_dir() as root:
        (root / "c.yaml").write_text(text)
        _cli(["configs", "validate", str(root / "c.yaml")], capsys)


SWEEP_KEYS = ["model", "data", "accuracy", "blocks", "granularities", "sparsities", "methods", "configs", "seq_lens",
              "batches", "budget", "glue_dir", "unknown_key"]  # fmt: skip


AXIS_KEYS = [".".join(p) for p in PATHS] + ["pe_array.rows,pe_array.cols", "clock_mhz,dram.bw_gb_per_s", "nope.x"]
axis_values = st.one_of(st.integers(min_value=1, max_value=512), st.lists(st.integers(0, 512), min_size=2, max_size=2),
                        values)  # plausible sizes (pairs for tied keys) among arbitrary values
hardware_axes = st.dictionaries(st.sampled_from(AXIS_KEYS), st.lists(axis_values, max_size=3), max_size=2)


@FUZZ
@given(data=st.dictionaries(st.sampled_from(SWEEP_KEYS), values, max_size=5), axes=st.none() | hardware_axes)
def test_sweep_files_load_or_fail_cleanly(data, axes):
    TALLY["sweep files"] += 1
    if axes is not None:  # a valid rest of the file, so the axes are what is checked
        data = {"configs": ["asic-16x16-int8", "fpga-zcu102"], "hardware_axes": axes}
    with _case_dir() as root:
        (root / "s.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
        try:
            space = load_space(root / "s.yaml")
        except (ValueError, FileNotFoundError) as err:
            assert len(str(err)) < MAX_MESSAGE_CHARS
            return
        assert space.n_points >= 1
        for _, _, config, reason in space.derived_configs():  # each combination builds or says why it cannot
            assert (config is None) != (reason is None)
            TALLY["hardware-axis configs " + ("built" if reason is None else "infeasible")] += axes is not None


cells = st.one_of(st.integers(min_value=-5, max_value=300).map(str), st.sampled_from(["1.7", "inf", "nan", "", "x",
                  "1e3", "64.0", "true", "-0"]), st.text(max_size=6))  # fmt: skip
rows = st.lists(st.lists(cells, min_size=1, max_size=9), min_size=0, max_size=4)


@FUZZ
@given(body=rows)
def test_topologies_simulate_or_exit_2(body, capsys):
    with _case_dir() as root:
        lines = ["Layer name, M, N, K,"] + [", ".join(["layer", *r]) + "," for r in body]
        (root / "t.csv").write_text("\n".join(lines) + "\n")
        try:
            load_scalesim_topology(root / "t.csv")
        except ValueError as err:
            assert len(str(err)) < MAX_MESSAGE_CHARS
        _cli(["simulate", "--config", "asic-16x16-int8", "--topology", str(root / "t.csv"), "--json"], capsys)


@pytest.fixture(scope="module")
def mask_bytes(tmp_path_factory):
    from pruning import BlockPruner, PruneSettings

    model = tiny_classifier("bert")
    pruner = BlockPruner(PruneSettings(block="8x8", method="score", target_sparsity=0.5))
    pruner.prepare(model)
    pruner.prune()
    path = tmp_path_factory.mktemp("masks") / "block_masks.safetensors"
    save_masks(pruner.finalize(), path)
    return path.read_bytes()


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 40), cut=st.integers(0, 4000))
def test_tampered_mask_files_fail_cleanly(seed, flips, cut, mask_bytes):
    TALLY["mask files"] += 1
    rng = random.Random(seed)
    data = bytearray(mask_bytes[: len(mask_bytes) - cut] if cut < len(mask_bytes) else b"")
    for _ in range(flips if data else 0):
        data[rng.randrange(len(data))] = rng.randrange(256)
    with _case_dir() as root:
        (root / "block_masks.safetensors").write_bytes(bytes(data))
        try:
            masks = load_masks(root)
        except (ValueError, FileNotFoundError) as err:
            assert len(str(err)) < MAX_MESSAGE_CHARS
            return
        for mask in masks.values():
            assert mask.dense().shape == mask.weight_shape


OUTPUT_NAMES = {"out.csv", "outdir", "sub", "front.png", "front.svg", "ops.csv", "results", "user.png", "p.png"}
OPTION_VALUES = {
    "--objectives": st.sampled_from(["cycles:min", "cycles:min,accuracy:max", "a:b", "cycles:min,cycles:max", "",
                                     ":min", "accuracy:max,energy_pj:min,cycles:min", "label:min,cycles:min",
                                     "cycles:min,accuracy:max"]),
    "--out": st.sampled_from(["out.csv", "outdir", ".", "..", "/", "user.txt", "sub/front.parquet", "user.txt/x",
                              "link.csv", "dangling.csv", "loop", "t.csv"]),
    "--plot": st.sampled_from(["front", "user", "sub/p", "."]),
    "--config": st.sampled_from(["asic-16x16-int8", "fpga-zcu102", "nope", "user.txt", ""]),
    "--seq-len": st.sampled_from(["8", "0", "-3", "1e9", "nan", "x", "65536"]),
    "--batch": st.sampled_from(["1", "0", "2.5", "4097"]),
    "--csv": st.sampled_from(["ops.csv", "user.txt", ".", "sub/ops.csv", "link.csv", "dangling.csv", "loop/x.csv"]),
    "--max-folds": st.sampled_from(["1", "0", "100000", "x"]),
}


@FUZZ
@given(command=st.sampled_from(["pareto", "simulate", "plot", "configs"]),
       options=st.dictionaries(st.sampled_from(sorted(OPTION_VALUES)), st.none(), max_size=4),
       data=st.data(), overwrite=st.booleans())  # fmt: skip
def test_cli_argument_lists(command, options, data, overwrite, capsys):
    with _case_dir(user_file_may_change=overwrite) as root:
        table = root / "t.csv"
        table.write_text("cycles,accuracy,energy_pj,label\n10,0.5,3,a\n20,0.9,2,b\n30,,5,c\n5,0.1,9,d\n")
        hf = root / "config.json"
        tiny_classifier("bert").config.to_json_file(hf)
        before = {p: p.read_bytes() for p in (table, hf)}
        (root / "link.csv").symlink_to(root / "user.txt")  # links bsp must not write through
        (root / "dangling.csv").symlink_to(root / "missing" / "x.csv")
        (root / "loop").symlink_to(root / "loop")
        outside = {p.name for p in root.parent.iterdir()}
        base = {
            "pareto": ["pareto", str(table), "--objectives", "cycles:min,accuracy:max"],
            "simulate": ["simulate", "--hf-config", str(hf), "--config", "asic-16x16-int8", "--seq-len", "8"],
            "plot": ["plot", str(table)],
            "configs": ["configs", data.draw(st.sampled_from(["list", "show", "validate"]))],
        }
        argv = base[command]
        for option in options:
            argv += [option, data.draw(OPTION_VALUES[option])]
        if overwrite:
            argv.append("--overwrite")
        _cli(argv, capsys)
        for path, content in before.items():
            assert path.read_bytes() == content
        if not (overwrite and "user.txt" in argv):
            assert (root / "user.txt").read_text() == "precious"  # also through link.csv, even with --overwrite
        assert (root / "dangling.csv").is_symlink() and not (root / "missing").exists()
        created_outside = {p.name for p in root.parent.iterdir()} - outside
        assert not created_outside & OUTPUT_NAMES, f"{argv} wrote {created_outside & OUTPUT_NAMES} outside its dir"


def _nested(depth: int, leaf, kind: str):
    for _ in range(depth):
        leaf = [leaf] if kind == "list" else {"k": leaf}
    return leaf


@FUZZ
@given(depth=st.integers(0, 400), kind=st.sampled_from(["list", "map"]), repeat=st.booleans(),
       target=st.sampled_from(["config yaml", "sweep yaml", "hf json"]))  # fmt: skip
def test_deep_and_repeated_inputs_exit_0_or_2(depth, kind, repeat, target, capsys):
    TALLY["deep inputs"] += 1
    with _case_dir() as root:
        nested = _nested(depth, 1, kind)
        if target == "hf json":
            data = {**tiny_classifier("bert").config.to_dict(), "extra": nested}
            (root / "config.json").write_text(json.dumps(data))
            _cli(["simulate", "--hf-config", str(root / "config.json"), "--config", "asic-16x16-int8",
                  "--seq-len", "8"], capsys)  # fmt: skip
            return
        text = yaml.safe_dump({"name": "x", "extra": nested}, width=10_000) if depth < 300 else (
            "name: x\nextra: " + "[" * depth + "]" * depth + "\n")  # fmt: skip
        if repeat:
            text += "name: y\n"
        (root / "f.yaml").write_text(text)
        if target == "config yaml":
            _cli(["configs", "validate", str(root / "f.yaml")], capsys)
        else:
            try:
                load_space(root / "f.yaml")
            except (ValueError, FileNotFoundError) as err:
                assert len(str(err)) < MAX_MESSAGE_CHARS


api_args = st.one_of(scalars, st.tuples(scalars, scalars), st.lists(st.integers(-2, 40), max_size=3))


@FUZZ
@given(api=st.sampled_from(["Gemm", "BlockMask", "load_config", "knee_point", "hypervolume_2d", "derive_config"]),
       a=api_args, b=api_args)  # fmt: skip
def test_public_api_arguments_are_accepted_or_refused_by_name(api, a, b):
    """Arbitrary arguments to the public APIs: a valid result, or ValueError/TypeError with a short message."""
    import pandas as pd
    import torch

    from analysis.pareto import hypervolume_2d, knee_point
    from hwsim.config import derive_config
    from hwsim.workload import Gemm
    from pruning.masks import BlockMask
    from pruning.spec import BlockSpec, Granularity

    TALLY[f"api {api}"] += 1
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [3.0, 1.0, 2.0]})
    calls = {
        "Gemm": lambda: Gemm("g", 8, 8, 8, block=a, weight_bits=b if isinstance(b, int) else 8),
        "BlockMask": lambda: BlockMask(torch.ones(1, 1, dtype=torch.bool), BlockSpec(4, 4), Granularity.BLOCK, a),
        "load_config": lambda: load_config(a),
        "knee_point": lambda: knee_point(table.head(a if isinstance(a, int) and 0 <= a <= 3 else 0), "x:min,y:min"),
        "hypervolume_2d": lambda: hypervolume_2d(table, "x:min,y:min", a),
        "derive_config": lambda: derive_config("asic-16x16-int8", {"clock_mhz": a, "pe_array.rows": b}),
    }
    try:
        calls[api]()
    except (ValueError, TypeError, FileNotFoundError) as err:
        assert len(str(err)) < MAX_MESSAGE_CHARS


@FUZZ
@given(lines=st.lists(st.one_of(st.text(max_size=60),
                                values.map(lambda v: json.dumps(v, allow_nan=True)),
                                st.fixed_dictionaries({"point_id": st.text(max_size=8), "cycles": scalars,
                                                       "energy_pj": scalars}).map(json.dumps)),
                      max_size=12))  # fmt: skip
def test_tampered_result_stores_load_only_sound_records(lines):
    """Any lines in ``points.jsonl``: loading never raises; it keeps exactly the JSON objects with a string
    point_id whose metrics are finite numbers >= 0 or null (the rest are reported and evaluated again)."""
    from analysis.store import ResultStore

    def sound(line: str) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False
        if not isinstance(record, dict) or not isinstance(record.get("point_id"), str):
            return False
        metrics = [record.get(k) for k in ("cycles", "energy_pj")]
        return all(v is None or (type(v) in (int, float) and math.isfinite(v) and v >= 0) for v in metrics)

    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "points.jsonl", numeric_fields=("cycles", "energy_pj"))
        store.path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        try:
            records = store.records()
        except ValueError as err:  # only a file that is not UTF-8 text is refused whole
            assert "not UTF-8" in str(err)
            return
        expected = {json.loads(line)["point_id"] for line in lines if len(line.splitlines()) == 1 and sound(line)}
        assert {r["point_id"] for r in records} == expected

"""`bsp report`: a self-contained page whose plots really draw in a browser (headless Chromium)."""

import re
import shutil
import subprocess

import matplotlib.image as mpimg
import pytest
from conftest import tiny_classifier

from analysis import SweepSpace, sweep
from analysis.report import build_report, detail_points
from bsp_cli.main import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make install adds it)")


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    model = root / "tiny-bert"
    tiny_classifier("bert").save_pretrained(model)
    space = SweepSpace(model=str(model), accuracy="none", blocks=["8x8", "16x16"], sparsities=[0.0, 0.5, 0.75],
                       configs=["asic-16x16-int8", "fpga-zcu102"], seq_lens=[16])  # fmt: skip
    sweep(space, out_dir=root / "sweep", progress=False)
    return root / "sweep" / "sweep.parquet"


def _render(html_path, tmp_path) -> tuple[dict, str]:
    """The page's own record of what it drew (``<body data-...>``) and Chromium's log."""
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=15000"]  # fmt: skip
    run = subprocess.run([*flags, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=180)
    body = re.search(r"<body([^>]*)>", run.stdout)
    assert body, run.stderr[-2000:]
    return dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1).replace("&quot;", "'"))), run.stderr


@needs_browser
def test_the_pareto_page_draws_one_trace_per_accelerator_and_block_without_errors(table_path, tmp_path):
    import pandas as pd

    out = build_report(table_path, tmp_path / "report.html", detail=0)
    assert "cdn.plot.ly" not in out.read_text()[:2000]  # plotly.js is inline: the page opens offline
    drawn, log = _render(out, tmp_path)
    table = pd.read_parquet(table_path)
    pairs = table[["config", "block"]].drop_duplicates()
    asic_pairs = pairs[pairs["config"].str.startswith("asic")]  # the latency-vs-area plot: ASIC points only
    traces = len(pairs) + 1 + len(asic_pairs) + 1  # each plot's front line too
    assert drawn == {"plots": "2", "traces": str(traces), "errors": "[]"}, drawn
    assert "Uncaught" not in log and "CONSOLE" not in log
    screenshot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,900", "--virtual-time-budget=15000", f"--screenshot={screenshot}",
                    out.as_uri()], capture_output=True, timeout=180, check=True)  # fmt: skip
    pixels = mpimg.imread(screenshot)[..., :3]
    assert pixels.std() > 0.05  # not a blank page
    assert (pixels.reshape(-1, 3).round(2) != 1.0).any(axis=1).mean() > 0.02  # markers, axes and text drawn


@needs_browser
def test_front_points_get_a_per_layer_and_a_mask_section(table_path, tmp_path):
    import pandas as pd

    out = build_report(table_path, tmp_path / "report.html", detail=3)
    table = pd.read_parquet(table_path)
    picked = detail_points(table, "latency_s", "energy_pj", "min", "min", 3)
    with_masks = int(picked["masks_path"].notna().sum())
    drawn, _ = _render(out, tmp_path)
    assert drawn["plots"] == str(2 + len(picked) + with_masks) and drawn["errors"] == "[]", drawn  # + area plot


def test_report_cli_refuses_to_overwrite_its_input_or_an_existing_file(table_path, tmp_path, capsys):
    assert main(["report", str(table_path), "--out", str(table_path), "--overwrite"]) == 2
    assert "is the results table itself" in capsys.readouterr().err
    existing = tmp_path / "notes.html"
    existing.write_text("mine")
    assert main(["report", str(table_path), "--out", str(existing), "--detail", "0"]) == 2
    assert existing.read_text() == "mine" and "exists" in capsys.readouterr().err
    assert main(["report", str(table_path), "--out", str(tmp_path / "r.html"), "--detail", "0"]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1_000_000  # plotly.js embedded


def test_a_front_point_without_a_sequence_length_is_named_not_a_traceback(table_path, tmp_path, capsys):
    import pandas as pd

    table = pd.read_parquet(table_path)
    table["seq_len"] = float("nan")  # a hand-edited table: the detail sections cannot re-simulate its points
    edited = table_path.parent / "edited.csv"
    table.to_csv(edited, index=False)
    assert main(["report", str(edited), "--out", str(tmp_path / "r.html")]) == 2
    assert re.search(r"results row \d+: column 'seq_len' must be a positive whole number .* got nan",
                     capsys.readouterr().err)  # fmt: skip


def test_a_table_cell_naming_a_model_of_millions_of_layers_is_refused_not_simulated(table_path, tmp_path, capsys):
    """Issue 26's hang: the report re-simulates front points from their ``hf_config_dir``; a cell pointing at
    a config of 5,000,000 layers must be refused by the model-size bound (simulating it took about an hour)."""
    import json

    import pandas as pd

    huge = tmp_path / "huge"
    huge.mkdir()
    config = json.loads((table_path.parents[1] / "tiny-bert" / "config.json").read_text())
    (huge / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 5_000_000}))
    table = pd.read_parquet(table_path)
    table["hf_config_dir"] = str(huge)
    table["masks_path"] = None  # dense: the bound, not a mask mismatch, must stop it
    edited = tmp_path / "edited.csv"
    table.to_csv(edited, index=False)
    assert main(["report", str(edited), "--out", str(tmp_path / "r.html")]) == 2
    assert (
        "num_hidden_layers must be at most 10,000 (the largest encoders have ~100), got 5,000,000"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "r.html").exists()


def test_a_sweep_directory_stands_for_its_table(table_path, tmp_path, capsys):
    """``bsp report results/sweep`` reads ``sweep.parquet`` and finds the cached masks relative to it (masks_path
    is stored relative to the sweep directory); a directory without a results table is named."""
    assert main(["report", str(table_path.parent), "--out", str(tmp_path / "r.html"), "--detail", "2"]) == 0
    page = (tmp_path / "r.html").read_text()
    assert page.count(": kept groups of layer 0") >= 1  # a mask section: the masks were found
    assert main(["pareto", str(table_path.parent), "--objectives", "latency_s:min,energy_pj:min"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r2.html")]) == 2
    assert "is a directory without a results table" in capsys.readouterr().err
    both = tmp_path / "both"
    both.mkdir()
    for name in ("sweep.parquet", "search.parquet"):  # bsp search run into a sweep's directory writes its own
        (both / name).write_bytes(table_path.read_bytes())
    assert main(["pareto", str(both), "--objectives", "latency_s:min"]) == 2
    assert "holds sweep.parquet and search.parquet; give the one you mean" in capsys.readouterr().err


def test_a_copied_table_whose_masks_are_elsewhere_names_the_mask_path(table_path, tmp_path):
    import pandas as pd

    copy = tmp_path / "elsewhere" / "copy.csv"
    copy.parent.mkdir()
    pd.read_parquet(table_path).to_csv(copy, index=False)
    with pytest.raises(FileNotFoundError, match=r"masks_path '.*' is not under .*elsewhere \(the table's directory\)"):
        build_report(copy, tmp_path / "r.html", detail=2)
    assert build_report(copy, tmp_path / "r.html", detail=0).is_file()  # the page without the mask sections

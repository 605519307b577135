"""mkdocs hook: the pages generated from the code and the study outputs at build time (never committed).

- ``index.md``: the README (the front page on GitHub and here);
- ``reference/cli.md``: every ``bsp`` subcommand's ``--help``, from the argparse parsers;
- ``reference/config.md``: every field of the accelerator YAML (pydantic schema: type, default, bounds,
  description), the sweep file, the training budget and the pruning settings (dataclasses: defaults from
  the code, descriptions from their ``help`` metadata or the comment on the field's line);
- ``results/<study>.md``: each ``paper_figs/out/<study>/results.md`` with the study's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import inspect
import io
import os
import re
import tokenize
import typing
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "paper_figs" / "out"


def on_files(files, config):
    """Add the generated pages; their content comes from the code as it is now."""
    files.append(File.generated(config, "index.md", content=home_page()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    files.append(File.generated(config, "reference/config.md", content=config_reference()))
    for name, content in study_pages().items():
        files.append(File.generated(config, f"results/{name}.md", content=content))
    for study in sorted(STUDIES.glob("*/results.md")):
        for figure in sorted(study.parent.glob("fig_*.png")):
            files.append(File.generated(config, f"results/{study.parent.name}/{figure.name}",
                                        abs_src_path=str(figure)))  # fmt: skip
    return files


def home_page() -> str:
    """The README is the home page: its links into ``docs/`` made relative to the site."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text).replace("open `build/site/index.html`", "this site")


# ---- CLI -----------------------------------------------------------------------------------------------------


def cli_reference() -> str:
    from bsp_cli.main import build_parser

    os.environ["COLUMNS"] = "110"  # argparse wraps help text at the terminal width; the page's is fixed
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    parts = ["# CLI reference\n",
             "Generated from the argparse parsers (`bsp_cli/commands/`) when the site is built. Errors go to stderr "
             "as one line naming the option and the allowed values, with exit code 2 for bad input and 1 for an "
             "internal failure (`bsp -v ...` prints its traceback).\n",
             "```text", parser.format_help().rstrip(), "```\n"]  # fmt: skip
    for name, sub in subparsers.choices.items():
        parts += [f"## bsp {name}\n", "```text", sub.format_help().rstrip(), "```\n"]
    return "\n".join(parts)


# ---- configuration -------------------------------------------------------------------------------------------


def config_reference() -> str:
    from analysis.space import AccuracyBudget, SweepSpace
    from hwsim.config import AcceleratorConfig
    from pruning.settings import PruneSettings, TrainBudget

    parts = ["# Configuration reference\n",
             "Generated from the schemas in the code when the site is built: every field, its type, default and "
             "bounds. A value outside them is refused on load with a message naming the field path, the value "
             "and what is allowed (`bsp configs validate FILE` lists every problem of an accelerator file).\n",
             "## Accelerator config (`accel_configs/*.yaml`, `bsp configs show NAME`)\n",
             "Schema `hwsim.config.AcceleratorConfig` (pydantic; unknown keys are errors). Sizes in bytes accept "
             "`KiB`/`MiB` strings (`512 KiB`).\n"]  # fmt: skip
    parts += _pydantic_tables(AcceleratorConfig, "")
    parts += ["## Sweep file (`bsp sweep SWEEP.yaml`)\n",
              "Dataclass `analysis.space.SweepSpace`; every key optional, unknown keys are errors. "
              "`examples/sweep_hardware.yaml` and `examples/sweep_accuracy.yaml` explain each in context.\n",
              _dataclass_table(SweepSpace, sections=("budget",)),
              "### `budget:` (sweep training budget)\n",
              "Dataclass `analysis.space.AccuracyBudget`: the training budget below with sweep defaults.\n",
              _dataclass_table(AccuracyBudget),
              "## Training budget (`pruning.TrainBudget`, `bsp prune` options)\n",
              _dataclass_table(TrainBudget),
              "## Pruning settings (`pruning.PruneSettings`, `bsp prune` options)\n",
              _dataclass_table(PruneSettings)]  # fmt: skip
    return "\n".join(parts)


def _pydantic_tables(model, prefix: str) -> list[str]:
    rows, nested = [], []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _pydantic_model(info.annotation)
        if inner is not None:
            nested.append((inner, f"{path}."))
        default = "required" if info.is_required() else _show(info.get_default(call_default_factory=True))
        if inner is not None and not info.is_required():
            default = "section defaults" if info.get_default() is not None else "absent"
        meaning = info.description or _doc_line(inner) or (f"section: see `{path}` below" if inner else "")
        rows.append(f"| `{path}` | {_type_name(info.annotation)} | {default} | {_bounds(info.metadata)} | "
                    f"{_cell(meaning)} |")  # fmt: skip
    title = f"### `{prefix.rstrip('.')}`\n" if prefix else ""
    table = [title, _roles((model.__doc__ or "").strip().split("\n\n")[0]) + "\n" if prefix and model.__doc__ else "",
             "| field | type | default | bounds | meaning |", "| --- | --- | --- | --- | --- |", *rows, ""]
    for inner, inner_prefix in nested:
        table += _pydantic_tables(inner, inner_prefix)
    return table


def _pydantic_model(annotation):
    from pydantic import BaseModel

    candidates = typing.get_args(annotation) or (annotation,)
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _bounds(metadata) -> str:
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "length >="}
    return ", ".join(f"{symbol} {_number(getattr(m, key))}" for m in metadata for key, symbol in symbols.items()
                     if getattr(m, key, None) is not None)


def _number(value) -> str:
    """A bound as people write it: 1 TiB for a power-of-two size, 1e+06 for a large float."""
    if isinstance(value, int) and value >= 1 << 30 and value & (value - 1) == 0:
        return f"{value >> 40} TiB" if value >= 1 << 40 else f"{value >> 30} GiB"
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def _type_name(annotation) -> str:
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if args and type(None) in args:
        return " \\| ".join(_type_name(a) for a in args if a is not type(None)) + " or null"
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(args[0])
    if typing.get_origin(annotation) is dict:
        return f"mapping {_type_name(args[0])} → {_type_name(args[1])}"
    if args:
        return _cell(str(annotation).replace("typing.", ""))
    return getattr(annotation, "__name__", str(annotation))


def _dataclass_table(cls, sections: tuple[str, ...] = ()) -> str:
    comments = _field_comments(cls)
    rows = ["| field | default | meaning |", "| --- | --- | --- |"]
    for item in dataclasses.fields(cls):
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = "required"
        meaning = item.metadata.get("help") or comments.get(item.name, "")
        shown = "see below" if item.name in sections else _show(default)
        rows.append(f"| `{item.name}` | {_cell(shown)} | {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


def _field_comments(cls) -> dict[str, str]:
    """The comment on each field's line in the class body (its own class or the first base that defines it)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        source = inspect.getsource(klass)
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                match = re.match(r"\s*(\w+)\s*:", token.line)
                if match and token.line.lstrip().startswith(match.group(1)):
                    found[match.group(1)] = token.string.lstrip("# ").strip()
    return found


def _doc_line(model) -> str:
    return (model.__doc__ or "").strip().split("\n")[0] if model is not None else ""


def _show(value) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{value!s}`" if value not in ("", None) else ("`null`" if value is None else "")


def _roles(text: str) -> str:
    """Sphinx roles (``:mod:`x```) as plain code spans: the pages are Markdown."""
    return re.sub(r":(?:mod|func|class|meth|data|attr):`([^`]+)`", r"`\1`", text)


def _cell(text: str) -> str:
    return _roles(str(text)).replace("|", "\\|").replace("\n", " ")


# ---- results ---------------------------------------------------------------------------------------------------


def study_pages() -> dict[str, str]:
    """One page per study output directory: its results.md and its figures, as the scripts wrote them."""
    pages = {}
    for results in sorted(STUDIES.glob("*/results.md")):
        name = results.parent.name
        figures = sorted(results.parent.glob("fig_*.png"))
        text = results.read_text(encoding="utf-8").strip()
        body = re.sub(r"^#", "##", text, flags=re.MULTILINE) if text.startswith("#") else text
        parts = [f"# Study output: `{name}`\n",
                 f"Generated from `paper_figs/out/{name}/results.md`, as the study script wrote it (method "
                 "`magnitude` in tables written before the rename is the default recipe, now `score`).\n",
                 body, ""]  # fmt: skip
        parts += [f"![{figure.stem}]({name}/{figure.name})\n" for figure in figures]
        pages[name] = "\n".join(parts)
    return pages

"""Bounded input reading: YAML and text files that cannot exhaust memory or time, and short quotes of bad values.

PyYAML's ``safe_load`` builds aliases as shared references, so a "billion laughs" document loads small --
but anything that walks it afterwards (validation, ``repr`` in an error message) visits every expanded node.
:func:`load_yaml_text` therefore refuses documents over :data:`MAX_YAML_BYTES` and documents whose
*expanded* node count (each alias counted as the full subtree it stands for) exceeds
:data:`MAX_YAML_NODES`.

>>> load_yaml_text("a: &x [1, 2]\\nb: *x\\n", "example.yaml")
{'a': [1, 2], 'b': [1, 2]}
>>> bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\\n" + "".join(
...     f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\\n" for i in range(8))
>>> load_yaml_text(bomb, "bomb.yaml")
Traceback (most recent call last):
...
bsp_common.safe_yaml.YamlInputError: bomb.yaml: YAML expands to more than 100000 nodes (aliases); refused
"""

from __future__ import annotations

import reprlib
from pathlib import Path

import yaml

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "YamlInputError", "load_yaml_file", "load_yaml_text",
           "read_text_file", "short_repr"]  # fmt: skip

MAX_YAML_BYTES = 1 << 20  # 1 MiB: configs and sweep files are a few KiB
MAX_YAML_NODES = 100_000  # expanded nodes; a large sweep file has a few hundred
MAX_YAML_DEPTH = 64  # nesting levels; configs and sweep files have fewer than 6
MAX_QUOTE_CHARS = 80  # longest quote of a user value inside an error message

_repr = reprlib.Repr()
_repr.maxstring = MAX_QUOTE_CHARS
_repr.maxother = MAX_QUOTE_CHARS
_repr.maxlist = _repr.maxdict = _repr.maxtuple = _repr.maxset = 6
_repr.maxlevel = 2


def short_repr(value) -> str:
    """``repr`` of ``value`` cut to about :data:`MAX_QUOTE_CHARS` characters (safe on huge or deep values)."""
    return _repr.repr(value)


class YamlInputError(ValueError):
    """A YAML/text input that cannot be read; ``reason`` is the message without the file name."""

    def __init__(self, source: str, reason: str) -> None:
        self.source, self.reason = source, reason
        super().__init__(f"{source}: {reason}")


class _RefusedError(Exception):
    """A document refused while walking its nodes; ``reason`` is the message without the file name."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int, depth: int = 0) -> int:
    """Nodes of ``node`` with every alias expanded (up to ``limit``); refuses nesting deeper than
    :data:`MAX_YAML_DEPTH` and a mapping that repeats a key (PyYAML keeps the last silently)."""
    if depth > MAX_YAML_DEPTH:
        raise _RefusedError(f"nested deeper than {MAX_YAML_DEPTH} levels (line {node.start_mark.line + 1}); refused")
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = limit + 1  # a node that contains itself (recursive alias) counts as over the limit
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, limit, depth + 1)
            if size > limit:
                break
    elif isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):  # by tag too: 8192 (an int) and '8192' (a str) differ
                if (key_node.tag, key_node.value) in seen:
                    raise _RefusedError(f"key {short_repr(key_node.value)} appears twice in one mapping (line "
                                   f"{key_node.start_mark.line + 1}); give each setting once")  # fmt: skip
                seen.add((key_node.tag, key_node.value))
            size += _expanded_size(key_node, memo, limit, depth + 1) + _expanded_size(value_node, memo, limit,
                                                                                      depth + 1)  # fmt: skip
            if size > limit:
                break
    memo[key] = size
    return size


def load_yaml_text(text: str | bytes, source: str) -> object:
    """Parse one YAML document safely; :class:`YamlInputError` names ``source`` for every problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise YamlInputError(source, f"{len(text)} bytes is larger than the {MAX_YAML_BYTES}-byte limit")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise YamlInputError(source, f"not UTF-8 text (byte {err.start})") from None
    if len(text) > MAX_YAML_BYTES:
        raise YamlInputError(source, f"{len(text)} characters is larger than the {MAX_YAML_BYTES}-byte limit")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        if _expanded_size(node, {}, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise YamlInputError(source, f"YAML expands to more than {MAX_YAML_NODES} nodes (aliases); refused")
    except _RefusedError as err:
        raise YamlInputError(source, str(err)) from None
    except RecursionError:  # the parser itself recurses per nesting level
        raise YamlInputError(source, f"nested deeper than {MAX_YAML_DEPTH} levels; refused") from None
    except yaml.YAMLError as err:
        raise YamlInputError(source, f"not valid YAML ({short_repr(str(err))[1:-1]})") from None
    try:
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise YamlInputError(source, f"not valid YAML ({short_repr(str(err))[1:-1]})") from None
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a timestamp or number PyYAML cannot build
        raise YamlInputError(source, f"cannot read a YAML value ({short_repr(str(err))[1:-1]})") from None


def read_text_file(path: str | Path, what: str, max_bytes: int = MAX_YAML_BYTES) -> str:
    """UTF-8 text of a user file; missing, oversized, binary and unreadable files get one clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise YamlInputError(f"{what} {path}", f"{size} bytes is larger than the {max_bytes}-byte limit")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlInputError(f"{what} {path}", f"not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise YamlInputError(f"{what} {path}", f"cannot read ({err.strerror})") from None


def load_yaml_file(path: str | Path, what: str) -> object:
    """:func:`load_yaml_text` of a file, with ``what`` (e.g. ``"sweep file"``) in every message."""
    return load_yaml_text(read_text_file(path, what), f"{what} {path}")

"""Argument types shared by the ``bsp`` subcommands: bad values fail in argparse with the option named."""

from __future__ import annotations

import argparse
import math

__all__ = ["bounded_float", "bounded_int"]


def bounded_int(option: str, low: int, high: int):
    """An argparse ``type`` accepting whole numbers in ``[low, high]`` (no floats, no ``inf``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{option}: must be in [{low}, {high}], got {value}")
        return value

    return parse


def bounded_float(option: str, low: float, high: float, low_open: bool = False):
    """An argparse ``type`` accepting finite numbers in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: expected a number, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            interval = f"{'(' if low_open else '['}{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{option}: must be a finite number in {interval}, got {text}")
        return value

    return parse

"""Shared guards for every bsp entry point: output ownership, bounded YAML/text input, strict JSON."""

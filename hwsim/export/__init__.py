"""RTL export: per-layer memories ($readmemh/.coe/C), array-native streams, golden vectors, requantisation,
testbenches, and a reader (:func:`load_export`) that rebuilds every layer from the files alone."""

from hwsim.export.export import (
    DEFAULT_SAMPLE,
    QUANT_ERROR_WARNING,
    ExportOptions,
    QuantErrorWarning,
    export_model,
    load_schema,
)
from hwsim.export.formats import pack_words, read_c_array, read_coe, read_hex, unpack_words
from hwsim.export.load import Export, ExportedLayer, ExportError, load_export
from hwsim.export.quant import quantize
from hwsim.export.requant import quantize_multiplier, requantize

__all__ = [
    "DEFAULT_SAMPLE",
    "QUANT_ERROR_WARNING",
    "Export",
    "ExportError",
    "ExportOptions",
    "ExportedLayer",
    "QuantErrorWarning",
    "export_model",
    "load_export",
    "load_schema",
    "pack_words",
    "quantize",
    "quantize_multiplier",
    "read_c_array",
    "read_coe",
    "read_hex",
    "requantize",
    "unpack_words",
]

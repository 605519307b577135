"""RTL export: block patterns, BCSR, quantized weights ($readmemh/.coe/C), tile streams, golden vectors."""

from hwsim.export.export import DEFAULT_SAMPLE, ExportOptions, export_model, load_schema
from hwsim.export.formats import pack_words, read_c_array, read_coe, read_hex, unpack_words
from hwsim.export.quant import quantize

__all__ = [
    "DEFAULT_SAMPLE",
    "ExportOptions",
    "export_model",
    "load_schema",
    "pack_words",
    "quantize",
    "read_c_array",
    "read_coe",
    "read_hex",
    "unpack_words",
]

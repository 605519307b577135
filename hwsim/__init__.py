"""Cycle-level simulation of block-sparse transformer layers on systolic PE arrays."""

from hwsim.config import AcceleratorConfig, ConfigError, Dataflow, list_presets, load_config
from hwsim.simulate import SimResult, simulate, simulate_gemm
from hwsim.workload import Gemm, VectorKind, VectorOp, Workload, build_workload, named_model_configs, read_hf_config

__all__ = [
    "AcceleratorConfig",
    "ConfigError",
    "Dataflow",
    "Gemm",
    "SimResult",
    "VectorKind",
    "VectorOp",
    "Workload",
    "build_workload",
    "list_presets",
    "load_config",
    "named_model_configs",
    "read_hf_config",
    "simulate",
    "simulate_gemm",
]

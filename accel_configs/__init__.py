"""Shipped accelerator presets (YAML); load with ``hwsim.load_config(name)``."""

"""Experiments: what to vary (spec), and sweeps that train every combination into one folder (sweep)."""

"""Bundled resources (presets, icons, desktop files), installed as ``workbench.resources_data``."""

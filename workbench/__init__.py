"""Workbench: build, train and export small image-classification networks."""

__version__ = "0.1.0"

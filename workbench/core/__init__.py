"""The workbench core: layers, architectures, datasets, training and runs. Never imports Qt."""

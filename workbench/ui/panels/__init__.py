"""The docked panels: the layer builder with its network list and parameter form, and the training panel."""

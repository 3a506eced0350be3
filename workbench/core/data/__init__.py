"""Datasets: the catalog of known datasets, their readers, image folders, and the train/validation split."""

"""Dialogs: export a trained model, hand a run off to a cluster."""

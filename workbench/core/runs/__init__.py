"""Runs on disk: run folders and checkpoints, trained models, evaluation metrics, prediction."""

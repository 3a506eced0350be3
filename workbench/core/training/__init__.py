"""Training: the run's settings, devices and precision, the engine and its callbacks, torchrun."""

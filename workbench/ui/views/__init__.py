"""The tabs: training plots and gallery, evaluation, gradients, weights, runs, data, activations."""

"""Looking inside networks: activation functions and their slopes, weights as images."""

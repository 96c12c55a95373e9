"""The harness: the loop, evaluation, checkpoints, the run directory and its mirrors."""

"""Read run directories (docs/run-directory.md) and turn them into the paper's tables, statistics and plots.

Never imports the training code (salsa/, torch): everything here reads files.
"""

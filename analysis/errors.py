class AnalysisError(Exception):
    """A problem the user must fix (no runs, a corrupt file, ...); the CLI prints it without a traceback."""

import sys

from salsa.unforeseen import guarded


def main() -> int:
    from .cli import main
    return main()


sys.exit(guarded("python -m analysis", main))

"""The one error a user can cause (a bad grid file, tier or option): printed without a traceback, exit 2."""


class SweepError(Exception):
    pass

"""The one exception type the CLI turns into a clean one-line error."""


class TricoError(Exception):
    """A user-facing error: bad input, missing file, unsupported option. Printed without a traceback."""

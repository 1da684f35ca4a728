"""Error classes of the project: the CLI turns them into one-line messages and exit status 2.

Anything that is the user's input (a params value, an unreadable or empty input file or folder) raises
one of these with a message that names the key or the file and says what is allowed.
"""

from __future__ import annotations


class DislomobError(Exception):
    """Base of the errors the CLI reports as one line (exit status 2): bad input, not a bug."""


class InputFileError(DislomobError, ValueError):
    """An input file or folder that cannot be used (missing, empty, truncated, not ours); names the path."""

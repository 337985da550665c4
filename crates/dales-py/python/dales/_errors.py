"""The exceptions dales raises (the extension module raises these classes)."""


class DalesError(Exception):
    """Base class of every error dales raises (a diverged run, a model too large, ...)."""


class DalesValueError(DalesError, ValueError):
    """A configuration value, key or argument dales cannot use; the message names it."""


class DalesOSError(DalesError, OSError):
    """A file, data directory or run directory that is missing, unreadable or in use."""

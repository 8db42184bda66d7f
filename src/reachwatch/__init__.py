"""reachwatch: an open observatory of website blocking and internet shutdowns."""

from reachwatch.compiled import install_guard

__version__ = "0.1.0"
SOFTWARE_NAME = "reachwatch"

__all__ = ["SOFTWARE_NAME", "__version__"]

install_guard()  # before any compiled module is imported: never run an extension older than its source

"""reachwatch: an open observatory of website blocking and internet shutdowns."""

__version__ = "0.1.0"
SOFTWARE_NAME = "reachwatch"

__all__ = ["SOFTWARE_NAME", "__version__"]

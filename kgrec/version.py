"""The package version (its own module so every layer, and setup.cfg, can read it)."""
__version__ = "0.1.0"

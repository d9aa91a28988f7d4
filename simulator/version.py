"""The package version, recorded in results, manifests and caches."""

__version__ = "0.1.0"

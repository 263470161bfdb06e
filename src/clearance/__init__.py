"""Clearance: an export-control gateway for frontier AI models."""

__version__ = "0.1.0"

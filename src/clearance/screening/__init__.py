"""Restricted-party screening: list loaders, name normalisation, matcher, re-screening."""

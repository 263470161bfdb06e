"""Limits and budgets per verified person, organisation and key (docs/limits.md)."""

"""The operator console (/console): dashboard, model catalog and kill switch, people, roles."""

from clearance.portal.console.app import console_app

__all__ = ["console_app"]

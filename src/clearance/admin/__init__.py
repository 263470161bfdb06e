"""The operator API (`/admin/api`): scoped admin tokens and the routes they open."""

from clearance.admin.routes import admin_app

__all__ = ["admin_app"]

"""The enrolment portal: sign-in by emailed link, verification with the camera, API keys."""

from clearance.portal.app import portal_app

__all__ = ["portal_app"]

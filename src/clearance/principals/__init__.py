"""Principals: organisations, users, API keys, identity facts and licences."""

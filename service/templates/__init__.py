"""Jinja2 templates (a package so that they ship with the wheel)."""

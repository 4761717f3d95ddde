"""Alembic migrations of the audit store (a package so that they ship in wheels)."""

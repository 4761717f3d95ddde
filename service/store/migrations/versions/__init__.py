"""Alembic revision scripts of the audit store."""

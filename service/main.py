"""ASGI entry point for uvicorn: ``service.main:app``. Models load in the lifespan, not here."""

from service.app import create_app

app = create_app()

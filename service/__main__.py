"""`python -m service` runs the same CLI as `docextract`."""

from service.cli import app

app()

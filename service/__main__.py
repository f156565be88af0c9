"""`python -m service` runs the same CLI as `docextract`."""

from service.cli.app import app

app()

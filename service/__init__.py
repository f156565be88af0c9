"""docextract HTTP service, CLI and OCR stage. May import `model`; never the reverse."""

__version__ = "0.1.0"

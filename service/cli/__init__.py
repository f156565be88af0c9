"""The `docextract` command line: one module per command group."""

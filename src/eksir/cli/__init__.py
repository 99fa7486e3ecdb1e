"""The `eksir` command line: typer commands, rich rendering, one exit-code table."""

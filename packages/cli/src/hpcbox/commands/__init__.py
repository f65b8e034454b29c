"""One module per command; each exposes ``run(args) -> exit code``. Imported only when chosen."""

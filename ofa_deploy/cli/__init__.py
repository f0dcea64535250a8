"""The `ofa-deploy` command line: one thin module per command group, imported lazily."""

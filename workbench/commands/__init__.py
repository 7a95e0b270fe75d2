"""CLI subcommands: one module per verb, each defining register(subparsers)."""

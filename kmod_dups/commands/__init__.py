"""The ``kmod-dups`` subcommands, one module each, apart from the logic they
call: each parses its arguments, calls its job's functions, prints the
job's report and returns the exit status (``register(subparsers)``)."""

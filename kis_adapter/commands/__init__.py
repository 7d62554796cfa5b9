"""One module per ``kis-adapter`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""

"""Exit codes of the commands (README.md lists them). Kept free of imports: cotforge.entry reads them before the CLI
loads."""

SERVICE_FAILED = 1  # an outside service failed (Hub, network)
USAGE_ERROR = 2  # bad usage or input
INCOMPLETE = 3  # a build, sweep or judge run that ended with work failed or pending (run it again to finish)
CONTAMINATED = 4  # `check --fail-on-overlap` found an overlap
INTERRUPTED = 130  # Ctrl-C or SIGTERM; the work done is kept

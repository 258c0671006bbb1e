"""The CLI's exit codes, as the README lists them: scripts branch on these."""

EXIT_FAILED = 1  # the job ended badly, or the request was refused (404, 409)
EXIT_USAGE = 2  # bad input or configuration
EXIT_UNAVAILABLE = 3  # the gateway, RabbitMQ or the store cannot be reached
EXIT_AUTH = 4  # a missing or insufficient API key
EXIT_TIMED_OUT = 5  # a wait timed out
EXIT_INTERRUPTED = 130  # Ctrl-C during a wait: the job goes on

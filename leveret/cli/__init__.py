"""The `leveret` command line: one module per group of commands, registered on import."""

from leveret.cli import dlq, jobs, keys, serve, topology, worker
from leveret.cli.app import app

__all__ = ["app", "dlq", "jobs", "keys", "main", "serve", "topology", "worker"]


def main() -> None:
    """Entry point of the `leveret` console script."""
    app()

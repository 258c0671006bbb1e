"""Leveret's throughput and latency benchmark: `python -m bench` (see bench/cli.py).

Every scenario runs in a fresh namespace on the same RabbitMQ, with a fresh SQLite store in a
temporary directory, and removes what it declared when it ends. The raw aio-pika ceiling is
measured in the same run, so that every figure can be read as a ratio to it.
"""

from bench.plan import Plan
from bench.results import Latency, Result

__all__ = ["Latency", "Plan", "Result"]

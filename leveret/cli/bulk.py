"""`leveret submit --file`: many jobs from a JSON-lines file, in batches."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from leveret.cli.exits import EXIT_USAGE
from leveret.cli.options import err
from leveret.cli.output import emit_json, exit_code, fail, progress_bar
from leveret.client import SyncClient
from leveret.client.errors import LeveretClientError

MAX_BATCH = 1000  # the gateway's largest batch


def read_submissions(path: str, defaults: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int]]:
    """The submit objects in the JSON-lines file at `path` (`-`: stdin) over `defaults`,
    and the line each came from. Every line is checked before anything is sent."""
    source = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {source}: {exc}", EXIT_USAGE)
    specs: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{source} line {number} is not valid JSON: {exc}", EXIT_USAGE)
        if not isinstance(item, dict) or not isinstance(item.get("tags", {}), dict):
            fail(f"{source} line {number}: expected an object (with tags an object)", EXIT_USAGE)
        spec = {**defaults, **item}
        # Tags from --tag and from the line add up; the line wins a clash.
        spec["tags"] = {**(defaults.get("tags") or {}), **item.get("tags", {})} or None
        if not spec.get("type"):
            fail(f'{source} line {number} has no "type" (or give TYPE)', EXIT_USAGE)
        specs.append(spec)
        numbers.append(number)
    return specs, numbers


def submit_file(
    client: SyncClient, path: str, defaults: dict[str, Any], atomic: bool, *, as_json: bool
) -> None:
    """Submit every line of `path` in batches; print the ids (and what was refused)."""
    specs, numbers = read_submissions(path, defaults)
    ids: list[str] = []
    refused: list[dict[str, Any]] = []
    with progress_bar() as bar:
        task = bar.add_task(f"submitting {path}", total=len(specs))
        for start in range(0, len(specs), MAX_BATCH):
            lines = numbers[start : start + MAX_BATCH]
            try:
                result = client.submit_batch(specs[start : start + MAX_BATCH], atomic=atomic)
            except LeveretClientError as exc:
                index = exc.details.get("index") if isinstance(exc.details, dict) else None
                where = f"line {lines[index]}: " if isinstance(index, int) else ""
                if not ids and not where:
                    raise  # nothing was sent: the plain error says it all
                # Earlier batches are stored: say how far it got, so that nothing is sent twice.
                sent = f"; the {len(ids)} jobs of the lines before line {lines[0]} were submitted"
                fail(f"{where}{exc}{sent if ids else ''}", exit_code(exc))
            for item in result.results:
                if item.job is not None:
                    ids.append(item.job.id)
                else:
                    code, message = item.error_code or "", item.error or ""
                    refused.append({"line": lines[item.index], "code": code, "message": message})
            bar.advance(task, len(lines))
    if as_json:
        counts = {"total": len(specs), "accepted": len(ids), "rejected": len(refused)}
        emit_json({**counts, "ids": ids, "errors": refused})
    else:
        for job_id in ids:
            typer.echo(job_id)
        for entry in refused:
            err.print(f"line {entry['line']}: {entry['message']}", highlight=False, markup=False)
    if refused:
        fail(f"{len(refused)} of {len(specs)} lines were refused", EXIT_USAGE)

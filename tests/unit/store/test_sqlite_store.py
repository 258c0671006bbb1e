"""The SQLite store: two processes racing for the same jobs on one file, each job won once."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from leveret.jobs.store import SQLiteStore
from tests.unit.store.sample_jobs import S, ids, make_job

REPO_ROOT = Path(__file__).resolve().parents[3]


_RACER = """
import asyncio, json, sys
from leveret.jobs.states import JobState
from leveret.jobs.store import SQLiteStore

async def race(path, name, ids):
    store = SQLiteStore(path)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()  # the parent says go once both are ready
    won = []
    for start in range(0, len(ids), 20):  # waves of 20 at once, so the two writers interleave
        moves = [
            store.transition(i, JobState.RUNNING, sources=frozenset({JobState.SCHEDULED}),
                             changes={"worker": name})
            for i in ids[start:start + 20]
        ]
        won += [m.id for m in await asyncio.gather(*moves) if m is not None]
    await store.close()
    print(json.dumps(won), flush=True)

asyncio.run(race(sys.argv[1], sys.argv[2], json.loads(sys.stdin.readline())))
"""


async def test_sqlite_two_processes_racing_for_the_same_jobs(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    await store.open()
    racers: list[asyncio.subprocess.Process] = []
    try:
        jobs = await store.create_many([make_job() for _ in range(200)])
        order = ids(jobs)
        for name in ("one", "two"):
            racer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _RACER,
                str(path),
                name,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=REPO_ROOT,
            )
            racers.append(racer)
            # Both go through the jobs in the same order: a race for every one of them.
            await _say(racer, json.dumps(order))
        for racer in racers:
            assert racer.stdout is not None
            assert await racer.stdout.readline() == b"ready\n"
        for racer in racers:
            await _say(racer, "go")
        outputs = [await racer.communicate() for racer in racers]
        assert [racer.returncode for racer in racers] == [0, 0]
        won: dict[str, list[str]] = {
            name: json.loads(out) for name, (out, _) in zip(("one", "two"), outputs, strict=True)
        }
        assert len(won["one"]) + len(won["two"]) == len(jobs)  # one win per job, no more
        assert set(won["one"]) | set(won["two"]) == set(order)  # and none left unclaimed
        for job in jobs:
            stored = await store.get(job.id)
            assert stored is not None
            assert stored.state is S.RUNNING
            assert stored.id in won[stored.worker or ""]
    finally:
        for racer in racers:
            if racer.returncode is None:
                racer.kill()
                await racer.wait()
        await store.close()


async def _say(racer: asyncio.subprocess.Process, line: str) -> None:
    assert racer.stdin is not None
    racer.stdin.write(line.encode() + b"\n")
    await racer.stdin.drain()

"""A TCP proxy between Leveret and RabbitMQ that can cut, stall or slow connections for real."""

from __future__ import annotations

import asyncio
import contextlib

from yarl import URL

_CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the target; `cut` drops every connection, `stall` stops
    forwarding bytes (both ways) and `slow` delays them, until `resume`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._upstream: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._delay = 0.0
        self._rate: int | None = None
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url_for(self, url: str) -> str:
        """`url` (an AMQP URL of the target) pointed at this proxy instead."""
        return str(URL(url).with_host("127.0.0.1").with_port(self.port))

    def cut(self) -> None:
        """Close every proxied connection at once, as a network failure would."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._upstream.clear()

    def stall(self) -> None:
        """Keep connections open but pass no more bytes: a broker that stopped answering."""
        self._flowing.clear()

    def slow(self, delay: float = 0.05, rate: int | None = None) -> None:
        """Hold every chunk `delay` seconds before passing it on, each way, and with `rate`
        pass at most that many bytes a second: a long or thin link. Bytes that arrive while a
        chunk is held travel together in the next one, so a byte is late by `delay` to twice
        `delay`, as on a link with that latency, rather than queueing behind every chunk."""
        if delay < 0 or (rate is not None and rate < 1):
            raise ValueError("delay must be >= 0 and rate >= 1 byte a second")
        self._delay = delay
        self._rate = rate

    def resume(self) -> None:
        """Pass bytes again, at full speed."""
        self._delay = 0.0
        self._rate = None
        self._flowing.set()

    def upstream_ports(self) -> set[int]:
        """Local ports of the open connections to the target: how the target sees them (as
        peer ports), to tell when it has dropped them."""
        ports: set[int] = set()
        for writer in self._upstream:
            sockname = writer.get_extra_info("sockname")
            if sockname is not None and not writer.is_closing():
                ports.add(int(sockname[1]))
        return ports

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        self._upstream.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._upstream.discard(up_writer)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(self._chunk_size()):
                await self._flowing.wait()
                pause = self._pause_for(len(data))
                if pause > 0:
                    await asyncio.sleep(pause)  # the slowness itself
                    await self._flowing.wait()  # stalled meanwhile
                if writer.is_closing():
                    return
                writer.write(data)
                await writer.drain()

    def _chunk_size(self) -> int:
        # Under a rate cap, small chunks (a tenth of a second's worth) keep the flow even.
        if self._rate is None:
            return _CHUNK
        return max(1024, min(_CHUNK, self._rate // 10))

    def _pause_for(self, size: int) -> float:
        return self._delay + (size / self._rate if self._rate is not None else 0.0)

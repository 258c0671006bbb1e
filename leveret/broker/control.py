"""Fleet commands over the control exchange: every worker hears every command."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aio_pika
import msgspec
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from leveret.broker.listener import listen, listener_id
from leveret.broker.publisher import Publisher
from leveret.jobs.envelope import MSGPACK
from leveret.jobs.errors import Unroutable
from leveret.topology import Names

log = logging.getLogger(__name__)


class CancelJob(msgspec.Struct, tag="cancel", frozen=True):
    """Stop the handler of `job_id` wherever it runs (its state is already recorded)."""

    job_id: str


Command = CancelJob
_DECODER = msgspec.msgpack.Decoder(Command)
_ENCODER = msgspec.msgpack.Encoder()


async def send_command(publisher: Publisher, names: Names, command: Command) -> bool:
    """Publish `command` to every worker, confirmed; False when no worker listens."""
    message = aio_pika.Message(_ENCODER.encode(command), content_type=MSGPACK)
    try:
        await publisher.publish(names.control_exchange, "", message)
    except Unroutable:
        return False
    return True


async def listen_commands(
    connection: AbstractRobustConnection, names: Names, on_command: Callable[[Command], None]
) -> AbstractQueue:
    """Call `on_command` with every command sent to the fleet from now on."""

    def on_body(body: bytes) -> None:
        try:
            command = _DECODER.decode(body)
        except msgspec.DecodeError:
            log.warning("ignored an unreadable control message")
            return
        on_command(command)

    queue_name = names.listener_queue("control", listener_id())
    return await listen(connection, names.control_exchange, queue_name, on_body)

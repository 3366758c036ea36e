"""Relaying a streamed answer chunk by chunk, never buffered, then settling what it used.

However the stream ends, the client never mistakes a cut for a finished answer: an upstream
that stops before its terminal event, breaks or goes silent past the deadline gets an error
event in the client's format; an error event of its own is relayed as it came, and ends
the stream. A client that goes away closes the upstream call. Either way
the admission is settled from the usage the upstream reported. Where it reported none
(a cut before its usage chunk, a client gone), what was consumed is estimated: the input
at its reservation (the request's bytes, an upper bound), the output at one token per event
relayed (streams send a token or a few per event), never more than the reservation."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from decimal import Decimal

from runtime.bundle.money import Usage, reserved_usage
from runtime.gateway.deadline import Deadline
from runtime.gateway.transport import BROKEN
from runtime.routing.ticket import Ticket
from runtime.upstream.base import Response, StreamTranslator, UpstreamProtocolError
from runtime.upstream.common import REDACTED

Write = Callable[[bytes], Awaitable[None]]
AFTER_DONE = 1.0  # seconds the rest of a finished stream is read for (the body's own end)
SLICE = 64 * 1024  # bytes of upstream stream translated between two turns of the loop
SHUTDOWN_WRITE = 0.5  # seconds to write a shutdown's error event (within the drain's grace)


class Counted:
    """The client's writer, counting the events it sent."""

    __slots__ = ("events", "first", "write")

    def __init__(self, write: Write) -> None:
        self.write = write
        self.events = 0
        self.first: float | None = None  # time.perf_counter() of the first event sent

    async def __call__(self, data: bytes) -> None:
        await self.write(data)
        self.sent(data)

    def sent(self, data: bytes) -> None:
        """Counts the events with data, by their `data:` lines (one an event, as OpenAI and
        Anthropic send them; LF- or CRLF-ended alike): a comment, a keep-alive, is none."""
        if self.first is None:
            self.first = time.perf_counter()
        self.events += data.count(b"\ndata:") + data.startswith(b"data:")


class ClientGone(Exception):
    """The client closed its connection mid-stream."""

    ended = "client_gone"  # how the stream ended, as `relay` reports it


class ClientStuck(ClientGone):
    """The client stopped reading: a write did not go out within the client timeout."""

    ended = "client_timeout"


async def relay(
    resp: Response,
    translator: StreamTranslator,
    write: Counted,
    idle_timeout: float,
    client_timeout: float = 30.0,
    scrub: re.Pattern[bytes] | None = None,
) -> str:
    """Copy the stream to the client; returns how it ended: "ok", "upstream_cut",
    "upstream_timeout", "upstream_error" (malformed, broken, or the upstream's own error
    event, relayed), "client_gone", "client_timeout" (it stopped reading: a write waited
    `client_timeout` for room) or "gateway_shutdown" (cancelled by a drain that timed out;
    the cancel is answered: the client gets an error event). `scrub` takes the credential
    out of what the upstream sent (an error event may echo it): `common.scrubber`."""
    chunks = resp.chunks().__aiter__()
    send = write.write  # awaited here, not through two more coroutines per chunk
    ended = "ok"
    partial = b""  # what a malformed event's read gave before it (UpstreamProtocolError)
    status = 502  # of the error event, when the stream does not end well
    stuck: Deadline | None = None
    try:
        # `idle` runs while the upstream is waited for, `stuck` while the client is written to
        async with Deadline(idle_timeout) as idle, Deadline(client_timeout) as stuck:
            stuck.pause()
            while True:
                idle.restart()
                try:
                    data = await anext(chunks)
                except StopAsyncIteration:
                    break
                idle.pause()
                at, size = 0, len(data)
                while True:
                    # a chunk is read at most SLICE bytes at a time, the loop let go between
                    # them: aiohttp hands over what one read decompressed whole (64 KiB of
                    # gzip can be 64 MiB), and it is all there, so nothing else would wait
                    piece = data if size <= SLICE else data[at : at + SLICE]
                    at += SLICE
                    out = translator.feed(piece)
                    if out:
                        if scrub is not None:
                            out = scrub.sub(REDACTED, out)
                        stuck.restart()
                        try:
                            await send(out)
                        except (ConnectionError, RuntimeError) as exc:  # as in _send
                            raise ClientGone from exc
                        stuck.pause()
                        write.sent(out)
                    if at >= size or translator.done:
                        break
                    await asyncio.sleep(0)
                if translator.done:
                    break  # whole (or ended by its own error event, relayed as it came)
        if translator.failed:
            resp.close()
            return "upstream_error"
        if translator.done:
            await _send(write, translator.finish(), client_timeout)
            await _rest(chunks, resp)
            return ended
        ended = "upstream_cut"
        message = "the upstream closed the stream before it finished"
    except TimeoutError:
        if stuck is not None and stuck.expired:
            resp.close()
            return "client_timeout"
        ended, message = "upstream_timeout", f"the upstream was silent for {idle_timeout:g} s"
    except asyncio.CancelledError:  # the drain timed out (server.drain): answered here
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the handler ends by answering; aiohttp's shutdown waits for it
        if translator.done:  # cancelled while reading what follows a whole answer
            resp.close()
            return ended
        ended, message, status = "gateway_shutdown", "the gateway is shutting down; retry", 503
    except UpstreamProtocolError as exc:
        ended, message = "upstream_error", f"the upstream stream is malformed: {exc}"
        partial = scrub.sub(REDACTED, exc.partial) if scrub is not None else exc.partial
    except ClientGone as exc:
        resp.close()
        return exc.ended
    except BROKEN as exc:
        exc.__traceback__ = None  # aiohttp keeps it on `resp`: a cycle through this frame
        ended, message = "upstream_error", f"the upstream connection failed ({type(exc).__name__})"
    resp.close()
    try:  # the gateway's own error event is no output: sent past the count
        await _send(write.write, partial + translator.error_event(status, message),
                    SHUTDOWN_WRITE if ended == "gateway_shutdown" else client_timeout)  # fmt: skip
    except ClientGone as exc:
        return exc.ended
    finally:
        if partial:  # the upstream's events before the malformed one: output
            write.sent(partial)
    return ended


async def _rest(chunks: AsyncIterator[bytes], resp: Response) -> None:
    """What an upstream sends after its terminal event is no part of the answer, and the
    answer is whole: the rest is read (the connection then serves the next call) for at
    most AFTER_DONE seconds; an upstream that lingers longer, or resets, is closed."""
    try:
        async with Deadline(AFTER_DONE):
            async for _ in chunks:
                pass
    except TimeoutError:
        resp.close()
    except BROKEN as exc:
        exc.__traceback__ = None  # aiohttp keeps it on `resp`: a cycle through this frame
        resp.close()


async def _send(write: Write, data: bytes, timeout: float) -> None:
    try:
        async with Deadline(timeout):
            await write(data)
    except TimeoutError:
        raise ClientStuck from None
    except (ConnectionError, RuntimeError) as exc:  # aiohttp: reset, or closing transport
        raise ClientGone from exc


async def settle_stream(
    ticket: Ticket, translator: StreamTranslator, complete: bool, events: int
) -> tuple[Decimal, Usage]:
    """A complete stream is charged what the upstream reported. A cut one may have reported
    only its input so far (Anthropic does, first), or nothing: see the module's note. So
    may one the upstream ended with its own error event (not output: not counted); if that
    came before anything was relayed, and no usage, nothing was used: as an upstream error
    answered whole, it is not billed."""
    reported = translator.usage
    bound = reserved_usage(ticket.estimate, ticket.attempt.max_output_tokens)
    relayed = events - 1 if translator.failed else events
    seen = min(relayed, bound.output_tokens)
    billed = True
    if reported is None and translator.failed and relayed <= 0:
        usage, billed = Usage(), False
    elif reported is None:
        usage = Usage(input_tokens=bound.input_tokens, output_tokens=seen)
    elif complete or translator.final:
        usage = reported
    else:
        usage = replace(reported, output_tokens=max(reported.output_tokens, seen))
    return await ticket.asettle_through_cancel(usage, billed), usage

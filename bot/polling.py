"""Long polling that confirms a batch of updates only once it has been handled.

Telegram forgets the updates of a ``getUpdates`` answer when the next ``getUpdates`` call carries an
``offset`` past them. PTB's Updater makes that next call as soon as it has put the batch on the
Application's queue — before the handlers have run — so a process killed mid-batch loses the updates it
had fetched and not handled: Telegram never sends them again.

``ConfirmAfterHandling`` is the request object PTB uses for ``getUpdates`` only. Before it sends one, it
waits until every update already on the Application's queue has been handled (``update_queue.join()``:
the Application marks an update done after ``process_update`` has finished with it). So the offset that
confirms a batch leaves only after the batch was handled, and a process killed mid-batch gets the whole
batch again from Telegram at its restart. The handlers are safe to repeat (issue 5: a replayed update
changes nothing), so the updates it had handled before it died change nothing the second time.

Nothing else changes: the Updater's loop, its retries and its graceful stop (whose last ``getUpdates``
now also waits for the queue, so a SIGTERM confirms only what was handled) are PTB's own. The cost is one
round trip between batches, which were handled one update at a time anyway.
"""

from __future__ import annotations

import asyncio

from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, HTTPXRequest, RequestData


class ConfirmAfterHandling(BaseRequest):
    """Wraps the request used for getUpdates; ``bind`` it to the Application's update queue."""

    def __init__(self, inner: BaseRequest | None = None) -> None:
        # PTB's own default for getUpdates (ApplicationBuilder: one connection, HTTP/1.1)
        self._inner = inner if inner is not None else HTTPXRequest(connection_pool_size=1)
        self._queue: asyncio.Queue[object] | None = None

    def bind(self, queue: asyncio.Queue[object]) -> None:
        self._queue = queue

    @property
    def read_timeout(self) -> float | None:
        return self._inner.read_timeout

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def shutdown(self) -> None:
        await self._inner.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._queue is not None and url.endswith("/getUpdates"):
            await self._queue.join()  # the updates fetched so far are handled: now the offset may confirm them
        return await self._inner.do_request(url, method, request_data, read_timeout=read_timeout,
                                            write_timeout=write_timeout, connect_timeout=connect_timeout,
                                            pool_timeout=pool_timeout)

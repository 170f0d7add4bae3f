"""Run a producer (bag decoding, message conversion, observation assembly) on a thread of its own, a few items
ahead of the consumer (the model), so the two overlap: NumPy and PyTorch release the GIL in their kernels."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_DONE = object()


def prefetch(items: Iterable, depth: int = 4) -> Iterator:
    """Yield `items` in order, produced up to `depth` ahead on a worker thread. An exception in the producer is
    raised in the consumer at the item where it happened; closing the generator early stops the producer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put((_DONE, exc))
            return
        put((_DONE, None))

    thread = threading.Thread(target=work, name="vla_prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)

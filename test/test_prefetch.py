"""The prefetching producer thread used by offline evaluation: order kept, errors raised where they happened,
an early stop ends the producer."""
import threading
import time

import pytest

from vla_ros.data.prefetch import prefetch


def test_items_in_order_and_overlapped():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i
    got = []
    for x in prefetch(items(), depth=3):
        got.append(x)
        time.sleep(0.002)
    assert got == list(range(20)) == produced


def test_producer_error_is_raised_at_its_item():
    def items():
        yield 1
        yield 2
        raise ValueError("truncated bag at message 3")
    got = []
    with pytest.raises(ValueError, match="truncated bag at message 3"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_early_stop_ends_the_producer():
    def items():
        i = 0
        while True:
            yield i
            i += 1
    gen = prefetch(items(), depth=2)
    assert [next(gen) for _ in range(5)] == [0, 1, 2, 3, 4]
    gen.close()
    assert not any(t.name == "vla_prefetch" and t.is_alive() for t in threading.enumerate())

"""The desk runs Python's full GC pass itself, right after a drain (tps19/desk/full_gc.py): cyclic
garbage that reached the oldest generation is still collected, and Python's own thresholds are
back once the desk stops."""

from __future__ import annotations

import gc
import weakref

from tps19.desk.full_gc import NEVER, FullCollections

from .conftest import desk_app, desk_ready, wait_for


class Node:
    def __init__(self) -> None:
        self.me = self


def _old_cycle() -> weakref.ref:
    """A reference cycle in the oldest generation, unreachable now."""
    keep = [Node()]
    gc.collect(1)  # survives a generation-1 pass: moved to the oldest generation
    ref = weakref.ref(keep[0])
    del keep
    return ref


def test_old_cyclic_garbage_waits_for_the_desks_pass_and_goes_with_it():
    before = gc.get_threshold()
    full = FullCollections(every_s=3600)
    full.start()
    try:
        assert gc.get_threshold() == (before[0], NEVER, NEVER)
        ref = _old_cycle()
        for _ in range(30):  # young passes, as many as would have started a full pass before
            gc.collect(1)
        assert ref() is not None, "a younger pass collected the oldest generation"
        assert not full.after_frame() and ref() is not None  # not due yet
        full.every_s = 0
        assert full.after_frame() and ref() is None and full.runs == 1
    finally:
        full.stop()
    assert gc.get_threshold() == before


def test_generation_1_passes_wait_for_the_end_of_a_drain():
    before = gc.get_threshold()
    full = FullCollections(every_s=3600)
    full.start()
    try:
        gc.collect(0)
        young = [Node()]
        gc.collect(0)  # survives a generation-0 pass: now in generation 1
        ref = weakref.ref(young[0])
        del young
        junk = []
        while gc.get_count()[1] <= before[1]:  # generation-0 passes, automatic ones included
            junk.append([Node() for _ in range(before[0])])
            junk.clear()
            gc.collect(0)
        assert ref() is not None, "generation 1 was collected by Python itself"
        assert not full.after_frame() and full.young_runs == 1 and ref() is None
    finally:
        full.stop()
    assert gc.get_threshold() == before


async def test_the_desk_runs_the_full_pass_from_its_drain_and_gives_the_thresholds_back(settings):
    before = gc.get_threshold()
    app = desk_app(settings, "paper")
    async with app.run_test(size=(100, 30)) as pilot:
        await desk_ready(pilot, app)
        await wait_for(pilot, lambda: app.full_gc.active, what="the desk's GC policy")
        assert gc.get_threshold()[1:] == (NEVER, NEVER)
        ref = _old_cycle()
        app.full_gc.every_s = 0
        app._pump()  # a drain
        assert ref() is None and app.full_gc.runs >= 1
    assert gc.get_threshold() == before

"""The catch-up after a takeover: a partition answers once processed up to its end at the
assignment, whatever the clock says."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.runtime.catch_up import CatchUp


@dataclass(frozen=True)
class _Message:
    partition: int
    offset: int


def batch(partition: int, first: int, last: int) -> list[_Message]:
    """Messages of ``partition`` from offset ``first`` to ``last``, both included."""
    return [_Message(partition, offset) for offset in range(first, last + 1)]


def catch_up_of(committed: dict[int, int | None], ends: dict[int, int]) -> CatchUp:
    """A ``CatchUp`` given ``ends``' partitions at its first assignment, their ends read."""
    catch_up = CatchUp(committed.get)
    assert catch_up.assign(ends, generation=1) == set(ends)
    catch_up.ends_read(ends, generation=1)
    return catch_up


@pytest.mark.parametrize(
    ("committed", "end", "processed_to", "left"),
    [
        (None, 0, None, 0),  # an empty partition
        (100, 100, None, 0),  # the previous owner committed everything
        (100, 120, None, 20),  # its last 20 records are to be processed again
        (100, 120, 110, 10),
        (100, 120, 120, 0),
        (None, 5, 3, 2),  # no commit at all: from the beginning
        (100, 120, 150, 0),  # new traffic after the end: caught up all the same
        (130, 120, None, 0),  # committed past the end (traffic since)
    ],
)
def test_records_left_follow_the_processed_and_committed_offsets(
    committed: int | None, end: int, processed_to: int | None, left: int
) -> None:
    catch_up = catch_up_of({0: committed}, {0: end})
    if processed_to is not None:
        catch_up.processed(batch(0, 0, processed_to - 1))
    assert catch_up.left(0) == left
    assert catch_up.remaining() == left


def test_not_caught_up_while_the_ends_are_being_read() -> None:
    catch_up = CatchUp({0: 50}.get)
    catch_up.assign({0}, generation=1)
    catch_up.processed(batch(0, 0, 99))
    assert catch_up.left(0) is None and catch_up.remaining() is None
    catch_up.ends_read({0: 100}, generation=1)
    assert catch_up.left(0) == 0  # what was processed meanwhile counts


def test_a_partition_never_taken_over_has_nothing_left() -> None:
    catch_up = catch_up_of({0: 0}, {0: 10})
    assert catch_up.left(3) == 0
    catch_up.processed(batch(3, 0, 5))  # not followed: not kept either
    assert catch_up.remaining() == 10


def test_once_caught_up_a_partition_stays_so_and_costs_nothing() -> None:
    catch_up = catch_up_of({0: 0}, {0: 10})
    catch_up.processed(batch(0, 0, 9))
    assert catch_up.remaining() == 0
    catch_up.processed(batch(0, 10, 12))  # a no-op now
    assert catch_up.left(0) == 0


def test_each_partition_answers_for_itself() -> None:
    catch_up = catch_up_of({0: 0, 1: 0}, {0: 10, 1: 4})
    catch_up.processed(batch(1, 0, 3) + batch(0, 0, 4))
    assert (catch_up.left(0), catch_up.left(1), catch_up.remaining()) == (5, 0, 5)


def test_a_rebalance_keeps_kept_partitions_and_restarts_retaken_ones() -> None:
    committed: dict[int, int | None] = {0: 0, 1: 0, 2: 0}
    catch_up = catch_up_of(committed, {0: 10, 1: 10})
    catch_up.processed(batch(0, 0, 5) + batch(1, 0, 9))
    assert catch_up.left(1) == 0
    # Partition 1 goes to another worker; 0 stays; 2 is new.
    assert catch_up.assign({0, 2}, generation=2) == {2}
    catch_up.ends_read({2: 7}, generation=2)
    assert (catch_up.left(0), catch_up.left(1), catch_up.left(2)) == (4, 0, 7)
    # Partition 1 comes back: what this worker processed of it before counts no more.
    committed[1] = 12
    assert catch_up.assign({0, 1, 2}, generation=3) == {1}
    catch_up.ends_read({1: 30}, generation=3)
    assert catch_up.left(1) == 18


def test_ends_read_for_an_older_assignment_are_ignored_and_asked_again() -> None:
    catch_up = CatchUp({0: 0, 1: 0}.get)
    catch_up.assign({0}, generation=1)
    assert catch_up.awaits_ends(1)
    # Another rebalance before the read came back: partition 0 (kept) is asked again.
    assert catch_up.assign({0, 1}, generation=2) == {0, 1}
    assert not catch_up.awaits_ends(1) and catch_up.awaits_ends(2)
    catch_up.ends_read({0: 5}, generation=1)
    assert catch_up.left(0) is None
    catch_up.ends_read({0: 8, 1: 3}, generation=2)
    assert (catch_up.left(0), catch_up.left(1)) == (8, 3)
    assert not catch_up.awaits_ends(2)


def test_a_revoked_partition_is_forgotten() -> None:
    catch_up = catch_up_of({0: 0, 1: 0}, {0: 10, 1: 10})
    catch_up.assign({1}, generation=2)
    assert catch_up.left(0) == 0 and catch_up.remaining() == 10

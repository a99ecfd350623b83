"""The Faust internals app/runtime/compat relies on that no behaviour test reaches cheaply.

The rest is tested by behaviour on the real broker (tests/integration/test_compat_behaviour.py:
order per partition, commits after acks and after the changelog write, the fetch wait,
recovery to the true end, a rebalance; test_embedded_broker.py: the widening fetch wait).
What stays here is pinned by source, each test saying why; when a Faust upgrade breaks
one, re-read the upstream code next to app/runtime/compat before changing the test.
"""

from __future__ import annotations

import inspect

from faust.transport import consumer as faust_consumer

from app.runtime.compat.faust_transport import _Consumer


def _source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def test_upstream_commit_tps_is_still_the_three_steps_ours_repeats():
    # Ours replaces upstream's _commit_tps wholesale (the behaviour tests show it commits
    # after the changelog write and only acked offsets). A step upstream adds to it in a
    # patch release would be skipped silently, and no test can see a step it does not know.
    upstream = _source(faust_consumer.Consumer._commit_tps)
    steps = ("self._filter_committable_offsets(tps)", "await self._handle_attached(commit_offsets)",
             "await self._commit_offsets(")  # fmt: skip
    assert [upstream.index(step) for step in steps] == sorted(upstream.index(s) for s in steps)
    # Those two awaits and the crash on a failed attached send, nothing more.
    assert upstream.count("await ") == 3, "upstream's _commit_tps awaits something new"
    ours = _source(_Consumer._commit_tps)
    assert ours.index(steps[0]) < ours.index("before_commit()") < ours.index(steps[1])


def test_recovery_seeks_before_it_resumes_the_flow():
    # _Consumer.resume_flow seeks back to what was dropped between the two; perform_seek
    # (which it overrides) resets the read offsets to the committed ones. The window
    # between resume_partitions and resume_flow lasts a few event-loop turns: only a fetch
    # answered inside it shows the bug (faust#596), which the kill -9 test meets at random
    # and no test can provoke on demand.
    from faust.tables.recovery import Recovery

    resume = _source(Recovery._resume_streams)
    steps = ("consumer.resume_partitions(", "consumer.perform_seek()", "consumer.resume_flow()")
    assert [resume.index(s) for s in steps] == sorted(resume.index(s) for s in steps)
    assert "read_offset.update(" in _source(faust_consumer.Consumer.perform_seek)
    assert "self.suspend_flow.clear()" in _source(faust_consumer.Consumer.resume_flow)


def test_topics_of_as_many_partitions_go_to_workers_partition_by_partition():
    # agents/process_feedback.py teaches the bandit of clicks[N] from intervention-feedback[N]
    # on the worker that reads it: Faust's assignor must give partition N of every topic the
    # workers all subscribe, with the same partition count, to one worker (declare_topics
    # makes every topic as wide as clicks). The assignor's parts are run on real input; only
    # that _perform_assignment still wires them together is read from source (seeing it
    # through workers would take three on one broker and a feedback loop).
    from faust.assignor.client_assignment import ClientAssignment, ClientMetadata
    from faust.assignor.cluster_assignment import ClusterAssignment
    from faust.assignor.copartitioned_assignor import CopartitionedAssignor
    from faust.assignor.partition_assignor import PartitionAssignor

    from app.runtime.topics import CLICKS, FEEDBACK

    perform = _source(PartitionAssignor._perform_assignment)
    for step in ("self._get_copartitioned_groups(", "CopartitionedAssignor(",
                 "add_copartitioned_assignment(copart_assn)"):  # fmt: skip
        assert step in perform, step

    class Cluster:
        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(8))

    topics = {CLICKS, FEEDBACK, "nudgeflow-customer_to_state-changelog"}
    workers = ("w1", "w2", "w3")
    subscriptions = dict.fromkeys(workers, sorted(topics))
    groups = PartitionAssignor._get_copartitioned_groups(topics, Cluster(), subscriptions)
    [[group]] = [list(by_clients) for by_clients in groups.values()]
    assert group == topics

    cluster = ClusterAssignment()
    for worker in workers:
        metadata = ClientMetadata(assignment=ClientAssignment(actives={}, standbys={}),
                                  url=f"http://{worker}", changelog_distribution={})  # fmt: skip
        cluster.add_client(worker, sorted(topics), metadata)
    assigned = CopartitionedAssignor(
        topics=group, cluster_asgn=cluster.copartitioned_assignments(group), num_partitions=8,
        replicas=0,
    ).get_assignment()  # fmt: skip
    owned: list[int] = []
    for copartitioned in assigned.values():
        client = ClientAssignment(actives={}, standbys={})
        client.add_copartitioned_assignment(copartitioned)
        assert client.actives[CLICKS] and client.actives[FEEDBACK] == client.actives[CLICKS]
        owned += client.actives[CLICKS]
    assert sorted(owned) == list(range(8))


def test_upstream_getmany_is_still_the_steps_ours_repeats():
    # Ours replaces upstream's getmany to read each partition's high watermark once per
    # fetch, not once per record; a step upstream adds would be skipped silently.
    upstream = _source(faust_consumer.Consumer.getmany)
    steps = ("await self._wait_next_records(timeout)", "self.app.consumer_generation_id",
             "self.scheduler.iterate(records)", "self.highwater(tp)",
             "track_tp_end_offset(tp, highwater_mark)", "yield tp, to_message(tp, record)",
             "await self.perform_seek()")  # fmt: skip
    assert [upstream.index(step) for step in steps] == sorted(upstream.index(s) for s in steps)
    # (Two more yields are in its comment.)
    assert upstream.count("yield tp,") == 3 and upstream.count("await ") == 2
    ours = _source(_Consumer.getmany)
    for step in ("await self._wait_next_records(timeout)", "self.scheduler.iterate(records)",
                 "self.app.consumer_generation_id", "self.highwater(tp)",
                 "await self.perform_seek()"):  # fmt: skip
        assert step in ours

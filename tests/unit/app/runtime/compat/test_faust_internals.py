"""The Faust internals app/runtime/compat overrides or reads, pinned down.

Each test names one assumption; when a Faust upgrade breaks it, re-read the
upstream code next to app/runtime/compat before changing the test.
"""

from __future__ import annotations

import inspect

import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from app.runtime.compat.faust_transport import _Consumer, _ConsumerThread


def _source(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def test_upstream_drain_still_races_each_message_against_suspend_flow():
    # Our _drain_messages is upstream's with that one wait_first removed; if upstream
    # changed the loop, ours must be re-derived from it.
    upstream = _source(faust_consumer.Consumer._drain_messages)
    assert "callback(message), self.suspend_flow.wait()" in upstream
    ours = _source(_Consumer._drain_messages)
    for shared in ("_add_gap(tp, r_offset + 1, offset)", "set_read_offset(tp, offset)",
                   "self._n_acked = 0", "consumer_stopped_errors"):  # fmt: skip
        assert shared in upstream and shared in ours, shared


def test_commit_goes_through_commit_tps_and_flushes_the_producer_before_committing():
    assert list(inspect.signature(faust_consumer.Consumer._commit_tps).parameters) == [
        "self", "tps", "start_new_transaction",
    ]  # fmt: skip
    commit_offsets = _source(faust_consumer.Consumer._commit_offsets)
    assert commit_offsets.index("await self.app.producer.flush()") < commit_offsets.index(
        "did_commit = await self._commit(committable_offsets)"
    )
    assert "self._commit_tps(" in _source(faust_consumer.Consumer.force_commit)


def test_upstream_commit_tps_is_still_the_three_steps_ours_repeats():
    # Ours takes the offsets, writes the app's changelog, then does upstream's rest.
    upstream = _source(faust_consumer.Consumer._commit_tps)
    steps = ("self._filter_committable_offsets(tps)", "await self._handle_attached(commit_offsets)",
             "await self._commit_offsets(")  # fmt: skip
    assert [upstream.index(step) for step in steps] == sorted(upstream.index(s) for s in steps)
    ours = _source(_Consumer._commit_tps)
    assert ours.index(steps[0]) < ours.index("before_commit()") < ours.index(steps[1])


def test_worker_consumer_still_hard_codes_the_fetch_wait_we_replace():
    assert "fetch_max_wait_ms=1500" in _source(
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    )
    assert "_create_worker_consumer" in _ConsumerThread.__dict__


def test_recovery_ends_at_the_consumers_highwaters():
    from faust.tables.recovery import Recovery

    assert "consumer.highwaters(*tps)" in _source(Recovery._build_highwaters)


def test_direct_queue_relies_on_a_rebalance_clearing_managed_queues():
    from faust.app.base import App
    from mode.utils.queues import FlowControlEvent

    assert "for queue in self._queues" in _source(FlowControlEvent.clear)
    assert "T(self.flow_control.clear)()" in _source(App._on_partitions_revoked)


def test_consumer_ack_marks_an_offset_committable_without_an_event():
    assert list(inspect.signature(faust_consumer.Consumer.ack).parameters) == ["self", "message"]
    assert "acked_for_tp.append(offset)" in _source(faust_consumer.Consumer.ack)


@pytest.mark.parametrize("name", ["create_batch", "send_batch"])
def test_aiokafka_producer_has_the_batch_api(name):
    from aiokafka import AIOKafkaProducer

    assert callable(getattr(AIOKafkaProducer, name))


def test_consumer_thread_starts_its_consumer_in_on_start():
    # The Tansu fetch-wait hook wraps the Fetcher that start() creates.
    assert "await self._consumer.start()" in _source(faust_aiokafka.AIOKafkaConsumerThread.on_start)
    assert "on_start" in _ConsumerThread.__dict__


def test_aiokafka_fetcher_reads_the_wait_per_request_and_fills_records_per_answer():
    # app.runtime.compat.tansu_fetch_wait changes _fetch_max_wait_ms between requests, wraps
    # _proc_fetch_request, and reads _records, the request's topics and the partition
    # states' position and highwater.
    from aiokafka.consumer.fetcher import Fetcher

    assert "self._fetch_max_wait_ms," in _source(Fetcher._get_actions_per_node)
    assert "self._proc_fetch_request(assignment, node_id, request)" in _source(
        Fetcher._fetch_requests_routine
    )
    answer = _source(Fetcher._proc_fetch_request)
    for read in ("for topic, partitions in request.topics:",
                 "for partition, offset, _ in partitions:",
                 "tp_state.highwater = highwater", "self._records[tp] = FetchResult("):  # fmt: skip
        assert read in answer, read


def test_fetch_position_reads_what_aiokafka_keeps_per_partition():
    # app.runtime.compat.fetch_position reaches the aiokafka consumer under Faust's
    # consumer thread; the transport tells an accepted answer by the stamp aiokafka
    # puts on the partition's state.
    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer.fetcher import Fetcher

    assert "tp_state.timestamp = now_ms" in _source(Fetcher._proc_fetch_request)

    assert "_ensure_consumer" in faust_aiokafka.AIOKafkaConsumerThread.__dict__
    assert "self._thread" in _source(faust_aiokafka.Consumer.highwater) or "_thread" in _source(
        faust_aiokafka.Consumer
    )
    from aiokafka.consumer.subscription_state import TopicPartitionState

    assert {"position", "has_valid_position"} <= set(dir(TopicPartitionState))
    assert "_subscription" in _source(AIOKafkaConsumer.__init__)
    assert list(inspect.signature(AIOKafkaConsumer.highwater).parameters) == ["self", "partition"]


def test_recovery_seeks_before_it_resumes_the_flow():
    # _Consumer.resume_flow seeks back to what was dropped between the two; perform_seek
    # (which it overrides) resets the read offsets to the committed ones.
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
    # makes every topic as wide as clicks).
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

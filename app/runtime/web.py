"""HTTP views: the collector, feedback, customer state, server-sent interventions, health,
metrics and the OpenAPI document (contract §1, §3, §4, §5).

Every view under ``/v1/`` first passes the guard (``app.runtime.guard``: keys, rate
limits); ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json`` are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from importlib.resources import files
from typing import TYPE_CHECKING, cast

import aiohttp
import orjson
from aiohttp import web as aiohttp_web
from aiohttp.web import HTTPRequestEntityTooLarge, RequestPayloadError
from aiokafka.errors import KafkaError
from faust.web import Request, Response, View
from prometheus_client import generate_latest
from redis.exceptions import RedisError
from yarl import URL

from agents.process_clicks import SOURCE_HEADER
from app.decide.uplift import uplift_report
from app.deliver.sse import intervention_events, parse_stream_id
from app.deliver.uplift_counts import days_back, uplift_counts
from app.detect.learning import customer_scores
from app.errors import InvalidEvent, PayloadTooLarge
from app.feedback import (
    MAX_FEEDBACK_BYTES,
    LatestOutcome,
    check_indexed,
    feedback_to_wire,
    parse_feedback,
)
from app.ingest.collector import MAX_BODY_BYTES, json_content_type_problem, parse_event_batch
from app.ingest.customer_ids import hash_customer_id, is_pseudonym, resolve_customer_id
from app.ingest.events import event_to_wire
from app.ingest.partitioning import customer_partition
from app.runtime.compat import raw_producer
from app.runtime.compat.web_server import harden_server
from app.runtime.customer_view import customer_document
from app.runtime.guard import Guard, Refusal, Route
from app.runtime.topics import CLICKS, FEEDBACK

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp
    from tables.customer_state import CustomerState

__all__ = ["OPENAPI_DOCUMENT", "ROUTED_HEADER", "attach_views"]

log = logging.getLogger(__name__)

_FROM_COLLECTOR = [(SOURCE_HEADER, b"http")]
#: Set on a request one worker forwards to another: the receiver answers it itself.
ROUTED_HEADER = "X-Nudgeflow-Routed"
# What a rejected *body* keeps on clicks-failed: enough to debug, under Kafka's 1 MB limit.
_FAILED_BODY_KEEP_BYTES = 256 * 1024
# Feedback refusals and their status: the rest of a bad body is a 400, like the collector's.
_FEEDBACK_STATUS = {"too_large": 413, "unknown_intervention": 404, "customer_mismatch": 409}
# Redis answers in a millisecond; one that hangs must not hold a chatbot's request.
_FEEDBACK_REDIS_TIMEOUT_S = 2.0
# The customer view is what a chatbot loads as a conversation opens: it answers without
# outcomes rather than wait on a hanging Redis.
_OUTCOMES_REDIS_TIMEOUT_S = 0.5
_RETRY_AFTER_S = "5"
# A routed customer view: the owner answers in milliseconds, or is not there.
_FORWARD_TIMEOUT_S = 2.0
# Counting the uplift sets of a month is a few thousand SCARDs in one pipeline.
_UPLIFT_REDIS_TIMEOUT_S = 5.0
_FEEDBACK_TOO_LARGE = f"body: larger than {MAX_FEEDBACK_BYTES} bytes"
# The text format every Prometheus reads; aiohttp adds the charset and refuses one here.
_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
# Proxies must neither cache nor buffer an event stream (X-Accel-Buffering: nginx's switch).
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"}  # fmt: skip
# A client whose socket takes no more bytes for this long is not reading: drop it.
_SSE_WRITE_TIMEOUT_S = 10.0
# Starting the shared reader is one XREVRANGE.
_SSE_SUBSCRIBE_TIMEOUT_S = 5.0
_CUSTOMER_ID_MAX = 128
#: The OpenAPI 3.1 document of every route, served as it is.
OPENAPI_DOCUMENT = files("app.runtime").joinpath("openapi.json").read_bytes()


def attach_views(app: NudgeflowApp) -> None:
    """Register every HTTP view on ``app``."""
    settings = app.settings
    allowed_origins = set(settings.cors_origins)
    guard = Guard(settings, app.metrics)
    salt = settings.customer_id_salt.get_secret_value()
    body_timeout_s = settings.http_body_timeout_s
    harden_server(app.web, settings.http_idle_timeout_s)

    def json_response(
        view: View, body: object, status: int, request: Request, **extra_headers: str
    ) -> Response:
        headers = {**_cors_headers(request, allowed_origins), **extra_headers}
        return view.bytes(orjson.dumps(body), content_type="application/json", status=status,
                          headers=headers)  # fmt: skip

    def refuse(view: View, refusal: Refusal, request: Request) -> Response:
        return json_response(view, refusal.body, refusal.status, request, **refusal.headers)

    def stored_id(customer_id: str) -> str:
        """The id the state is kept under: the pseudonym when a salt is set."""
        return hash_customer_id(customer_id, salt) if salt else customer_id

    async def read_body(view: View, request: Request, max_bytes: int) -> bytes | Response:
        """The body, or the answer for one that is not JSON, too large or too slow."""
        problem = json_content_type_problem(request.headers.get("Content-Type"))
        if problem is not None:
            guard.refused("unsupported_media_type")
            return json_response(view, {"error": problem}, 415, request)
        too_large = PayloadTooLarge("too_large", f"body: larger than {max_bytes} bytes")
        # faust.web.Request is abstract; at runtime it is aiohttp's, which has content_length.
        if (request.content_length or 0) > max_bytes:  # type: ignore[attr-defined]
            raise too_large
        try:
            async with asyncio.timeout(body_timeout_s):
                return await request.read()
        except HTTPRequestEntityTooLarge:
            raise too_large from None
        except RequestPayloadError as exc:  # say, not what its Content-Encoding says
            raise InvalidEvent("invalid_body", f"body: cannot be read ({exc})") from None
        except TimeoutError:
            # A body that trickles in holds a connection: answer, and close it.
            guard.refused("body_timeout")
            error = {"error": f"body: not received within {body_timeout_s:g} s"}
            response = json_response(view, error, 408, request, Connection="close")
            # faust.web.Response is abstract; its aiohttp driver's is aiohttp's.
            cast("aiohttp_web.Response", response).force_close()
            return response

    async def keep_failed_body(reason: str, error: str, body: bytes) -> None:
        kept = body[:_FAILED_BODY_KEEP_BYTES]
        origin: dict[str, object] = {"body_bytes": len(body), "truncated": len(kept) < len(body)}
        payload: bytes | None = kept
        if salt and body:
            # Raw ids could be anywhere in a body that is not events: keep none of it.
            payload, origin["redacted"] = None, "customer_id_salt"
        await (await app.keep_failed(reason=reason, error=error, payload=payload,
                                     source="http", origin=origin))  # fmt: skip

    @app.page("/v1/events")
    class Events(View):
        async def options(self, request: Request) -> Response:
            return json_response(self, {}, 204, request)

        async def post(self, request: Request) -> Response:
            admitted = guard.admit(request, Route.INGEST)
            if isinstance(admitted, Refusal):
                return refuse(self, admitted, request)
            too_large = {"error": f"body: larger than {MAX_BODY_BYTES} bytes (1 MiB)"}
            body = b""
            try:
                read = await read_body(self, request, MAX_BODY_BYTES)
                if not isinstance(read, bytes):
                    return read
                body = read
                result = parse_event_batch(body, int(time.time() * 1000), app.max_future_skew_ms,
                                           salt)  # fmt: skip
            except PayloadTooLarge as exc:
                await keep_failed_body(exc.reason, too_large["error"], body)
                return json_response(self, too_large, 413, request)
            except InvalidEvent as exc:
                await keep_failed_body(exc.reason, str(exc), body)
                return json_response(self, {"error": str(exc)}, 400, request)

            metrics = app.metrics
            metrics.events_received.labels(source="http").inc(
                len(result.accepted) + len(result.rejected)
            )
            # The raw aiokafka producer: a Faust topic send costs several times more per event.
            send = raw_producer(app).send
            pending = []
            for rejection in result.rejected:
                pending.append(await app.keep_failed(
                    reason=rejection.reason, error=rejection.error, payload=rejection.payload,
                    source="http", origin={"index": rejection.index},
                ))  # fmt: skip
            for event in result.accepted:
                value = orjson.dumps(event_to_wire(event))
                pending.append(await send(CLICKS, value, key=event.customer_id.encode(),
                                          headers=_FROM_COLLECTOR))  # fmt: skip
            await asyncio.gather(*pending)  # 202 means: on the broker
            return json_response(self, result.response_body(), result.status, request)

    @app.page("/v1/feedback")
    class FeedbackView(View):
        async def options(self, request: Request) -> Response:
            return json_response(self, {}, 204, request)

        async def post(self, request: Request) -> Response:
            admitted = guard.admit(request, Route.READ_WRITE)
            if isinstance(admitted, Refusal):
                return refuse(self, admitted, request)
            rejected = app.metrics.feedback_rejected
            try:
                read = await read_body(self, request, MAX_FEEDBACK_BYTES)
                if not isinstance(read, bytes):
                    return read
                feedback = parse_feedback(read, int(time.time() * 1000), app.max_future_skew_ms)
                async with asyncio.timeout(_FEEDBACK_REDIS_TIMEOUT_S):
                    indexed = await app.feedback.intervention(feedback.intervention_id)
                    if salt:  # the intervention's (hashed) id or the shop's raw one
                        known = indexed.get("customer_id") if indexed else None
                        feedback = replace(feedback, customer_id=resolve_customer_id(
                            feedback.customer_id, salt, known if isinstance(known, str) else None
                        ))  # fmt: skip
                    await app.feedback.record(feedback, check_indexed(feedback, indexed))
            except PayloadTooLarge:
                rejected.labels(reason="too_large").inc()
                return json_response(self, {"error": _FEEDBACK_TOO_LARGE}, 413, request)
            except InvalidEvent as exc:
                rejected.labels(reason=exc.reason).inc()
                return json_response(self, {"error": str(exc)},
                                     _FEEDBACK_STATUS.get(exc.reason, 400), request)  # fmt: skip
            except (RedisError, OSError, TimeoutError) as exc:
                rejected.labels(reason="store_unavailable").inc()
                log.warning("feedback not recorded, Redis unavailable: %r", exc)
                return json_response(self, {"error": "feedback store unavailable, retry"}, 503,
                                     request, **{"Retry-After": _RETRY_AFTER_S})  # fmt: skip
            app.metrics.feedback.labels(outcome=feedback.outcome).inc()
            # On the topic too, for its other readers; marked, so the feedback agent does
            # not apply and count it a second time.
            try:
                sent = await raw_producer(app).send(
                    FEEDBACK, orjson.dumps(feedback_to_wire(feedback)),
                    key=feedback.customer_id.encode(), headers=_FROM_COLLECTOR,
                )  # fmt: skip
                await sent
            except KafkaError as exc:  # recorded all the same: the answer stays 202
                log.warning("feedback %s recorded but not put on %s: %r",
                            feedback.intervention_id, FEEDBACK, exc)  # fmt: skip
            answer = {"intervention_id": feedback.intervention_id, "outcome": feedback.outcome}
            return json_response(self, answer, 202, request)

    @app.page("/v1/stats/uplift")
    class Uplift(View):
        async def options(self, request: Request) -> Response:
            return json_response(self, {}, 204, request)

        async def get(self, request: Request) -> Response:
            admitted = guard.admit(request, Route.READ_WRITE)
            if isinstance(admitted, Refusal):
                return refuse(self, admitted, request)
            retention = settings.intervention_retention_days
            raw_days = request.query.get("days", str(retention))
            if not raw_days.isdigit() or not 1 <= int(raw_days) <= retention:
                error = {"error": f"days: must be an integer from 1 to {retention}"}
                return json_response(self, error, 400, request)
            days = days_back(int(raw_days))
            try:
                async with asyncio.timeout(_UPLIFT_REDIS_TIMEOUT_S):
                    counts = await uplift_counts(app.delivery.redis, days)
                    outcomes = await app.feedback.outcome_counts()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("uplift not answered, Redis unavailable: %r", exc)
                return json_response(self, {"error": "uplift store unavailable, retry"}, 503,
                                     request, **{"Retry-After": _RETRY_AFTER_S})  # fmt: skip
            report = uplift_report(counts)
            for reason, entry in report["reasons"].items():
                entry["feedback"] = outcomes.get(reason, {})
            body = {
                "days": [days[-1], days[0]],
                "holdout_share": settings.holdout_share,
                "conversion_window_h": settings.conversion_window_h,
                "unit": "decision",
                **report,
            }
            return json_response(self, body, 200, request)

    @app.page("/v1/customers/{customer_id}")
    class Customer(View):
        async def options(self, request: Request, customer_id: str) -> Response:
            return json_response(self, {}, 204, request)

        async def get(self, request: Request, customer_id: str) -> Response:
            def unavailable(error: str) -> Response:
                return json_response(self, {"error": error}, 503, request,
                                     **{"Retry-After": _RETRY_AFTER_S})  # fmt: skip

            # A forwarded request was limited by the worker it reached first, and names the
            # stored id already; its key is checked all the same.
            routed = ROUTED_HEADER in request.headers
            admitted = guard.admit(request, Route.READ_WRITE, limit=not routed)
            if isinstance(admitted, Refusal):
                return refuse(self, admitted, request)
            if routed or not salt:
                candidates = [customer_id]
            else:  # the shop's raw id, or a pseudonym quoted from an intervention
                candidates = [stored_id(customer_id)]
                if is_pseudonym(customer_id):
                    candidates.append(customer_id)
            for candidate in candidates:
                owner = None if routed else _owner_url(app, candidate)
                if not routed and owner is None:
                    return unavailable("partition owner unknown (partitions are moving), retry")
                if owner is not None and owner != _url_ident(app.conf.canonical_url):
                    try:
                        body, status = await _forward(app, request, owner, candidate)
                    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                        log.warning("customer view: owner %s:%s did not answer: %r", *owner, exc)
                        return unavailable("the worker that owns this customer does not "
                                           "answer (restarting or moving), retry")  # fmt: skip
                    if status == 404:
                        continue
                    return self.bytes(body, content_type="application/json", status=status,
                                      headers=_cors_headers(request, allowed_origins))  # fmt: skip
                # Mid-recovery, or before the events after the committed offsets are
                # processed again, a customer would look never seen (404).
                problem = _state_incomplete(app, candidate)
                if problem is not None:
                    return unavailable(problem)
                state = app.customers.get(candidate)
                if state is None:
                    continue
                outcomes = await _latest_outcomes(app, state)
                document = customer_document(state, _model_scores(app, candidate, state),
                                             outcomes)  # fmt: skip
                return json_response(self, document, 200, request)
            return json_response(self, {"error": "customer not found"}, 404, request)

    @app.page("/v1/interventions/stream")
    class InterventionStream(View):
        async def options(self, request: Request) -> Response:
            return json_response(self, {}, 204, request)

        async def get(self, request: Request) -> Response:
            customer_id = request.query.get("customer_id", "")
            admitted = guard.admit(request, Route.STREAM, customer_id)
            if isinstance(admitted, Refusal):
                return refuse(self, admitted, request)
            if not 1 <= len(customer_id) <= _CUSTOMER_ID_MAX:
                error = {"error": f"customer_id: required, 1 to {_CUSTOMER_ID_MAX} characters"}
                return json_response(self, error, 400, request)
            customer_id = stored_id(customer_id)
            # ?last_event_id= for EventSource polyfills that cannot set the header either.
            after_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
            if after_id is not None and parse_stream_id(after_id) is None:
                error = {"error": "Last-Event-ID: not a stream entry id (<ms>-<seq>)"}
                return json_response(self, error, 400, request)
            try:
                async with asyncio.timeout(_SSE_SUBSCRIBE_TIMEOUT_S):
                    subscription = await app.sse_hub.subscribe(customer_id)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("SSE stream not opened, Redis unavailable: %r", exc)
                return json_response(self, {"error": "intervention stream unavailable, retry"},
                                     503, request, **{"Retry-After": _RETRY_AFTER_S})  # fmt: skip
            # faust.web.Request is abstract; its aiohttp driver hands views aiohttp's own.
            raw = cast("aiohttp_web.Request", request)
            response = aiohttp_web.StreamResponse(
                headers={**_SSE_HEADERS, **_cors_headers(request, allowed_origins)}
            )
            metrics = app.metrics
            metrics.sse_clients.inc()
            try:
                await response.prepare(raw)
                chunks = intervention_events(
                    app.sse_hub, subscription, after_id, app.settings.sse_heartbeat_s
                )
                async with contextlib.aclosing(chunks):
                    async for chunk in chunks:
                        if not await _write_within(response, chunk, _SSE_WRITE_TIMEOUT_S):
                            log.info("SSE client of customer %s dropped: not reading",
                                     customer_id)  # fmt: skip
                            break
            except ConnectionError:
                pass  # the client went away; noticed at the first write after
            except (RedisError, OSError, TimeoutError) as exc:  # a replay failed: it resumes
                log.warning("SSE stream of customer %s ended, Redis unavailable: %r",
                            customer_id, exc)  # fmt: skip
            finally:
                app.sse_hub.unsubscribe(subscription)
                metrics.sse_clients.dec()
            return cast(Response, response)

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "alive"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready, detail = app.is_ready()
            return self.json({"ready": ready, **detail}, status=200 if ready else 503)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # ``?name[]=a&name[]=b``: only those series, as Prometheus' own handlers do.
            names = cast(aiohttp_web.Request, request).query.getall("name[]", [])
            registry = app.registry.restricted_registry(names) if names else app.registry
            return self.bytes(generate_latest(registry), content_type=_METRICS_CONTENT_TYPE)

    @app.page("/openapi.json")
    class OpenApi(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(OPENAPI_DOCUMENT, content_type="application/json",
                              headers={"Access-Control-Allow-Origin": "*",
                                       "Cache-Control": "public, max-age=300"})  # fmt: skip


async def _write_within(
    response: aiohttp_web.StreamResponse, chunk: bytes, timeout_s: float
) -> bool:
    """Write ``chunk``; False when the client's socket took no more within ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            await response.write(chunk)
    except TimeoutError:
        return False
    return True


def _state_incomplete(app: NudgeflowApp, customer_id: str) -> str | None:
    """Why this worker's state of ``customer_id`` may lack events it will have, or None."""
    ready, detail = app.is_ready()
    if ready:
        return None
    if not (detail["assigned_partitions"] and detail["tables_recovered"]) or detail["rebalancing"]:
        return "customer state is being recovered, retry"
    # Only the catch-up is left: a caught-up partition's customers are answered meanwhile.
    if app.catch_up.left(customer_partition(customer_id, app.settings.topic_partitions)) != 0:
        return "customer state is catching up after a takeover, retry"
    return None


def _model_scores(app: NudgeflowApp, customer_id: str, state: CustomerState) -> dict[str, float]:
    """What the models of the customer's partition say of them now (none with learning off)."""
    partition = app.customers.partition_of(customer_id)
    if app.models is None or partition is None:
        return {}
    learner = app.models.learners.get(partition)
    if learner is None:
        return {}
    scores = customer_scores(learner.models, state, int(time.time() * 1000))
    if "churn_risk" in scores:
        app.metrics.model_score.labels(model="rhythm").observe(scores["churn_risk"])
    return scores


async def _latest_outcomes(app: NudgeflowApp, state: CustomerState) -> dict[str, LatestOutcome]:
    """The latest feedback on the customer's interventions; none while Redis is unavailable."""
    ids = [i["intervention_id"] for i in state.interventions if "intervention_id" in i]
    if not ids:
        return {}
    try:
        async with asyncio.timeout(_OUTCOMES_REDIS_TIMEOUT_S):
            return await app.feedback.latest_outcomes(ids)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("customer view without outcomes, Redis unavailable: %r", exc)
        return {}


def _owner_url(app: NudgeflowApp, customer_id: str) -> tuple[str, int] | None:
    try:
        return _url_ident(app.router.key_store(app.customer_to_state.name, customer_id))
    except KeyError:  # no assignment yet, or a rebalance is under way
        return None


async def _forward(
    app: NudgeflowApp, request: Request, owner: tuple[str, int], customer_id: str
) -> tuple[bytes, int]:
    """Ask the worker that owns the key about ``customer_id`` (the stored id), once: the
    routed header stops any loop (Faust's own ``table_route`` has no hop limit, and workers
    that disagree on the assignment, e.g. mid-rebalance, would bounce a request between
    them)."""
    url = request.url.with_host(owner[0]).with_port(owner[1])
    if customer_id != request.match_info.get("customer_id"):
        # A pseudonym: 64 hex characters, nothing to escape.
        url = url.with_path(f"/v1/customers/{customer_id}")
    headers = {**request.headers, ROUTED_HEADER: "1"}
    timeout = aiohttp.ClientTimeout(total=_FORWARD_TIMEOUT_S)
    async with app.http_client.get(url, headers=headers, timeout=timeout) as response:
        return await response.read(), response.status


def _url_ident(url: URL) -> tuple[str, int]:
    return (url.host or "localhost", url.port or 80)


def _cors_headers(request: Request, allowed: set[str]) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if origin is None or not ("*" in allowed or origin in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, X-Api-Key, Last-Event-ID",
        "Access-Control-Max-Age": "600",
        # A page's script may read when to try again after a 429 or a 503.
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }

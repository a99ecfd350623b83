from app.detect.signals.thresholds cimport SignalThresholds
from app.ingest.events cimport ClickEvent
from tables.customer_state cimport (
    CustomerProfile,
    CustomerState,
    SessionState,
    SessionSummary,
    SignalRecord,
)


cdef class StateLimits:
    cdef readonly object recent_events_max, seen_event_ids_max
    cdef readonly object seen_session_ids_max, live_sessions_max, summary_max
    cdef readonly object signals_max, interventions_max

cdef class TimeRules:
    cdef readonly object allowed_lateness_ms, session_timeout_ms
    cdef readonly object customer_ttl_ms

cdef class Folded:
    cdef public CustomerState state
    cdef public SessionState session
    cdef public object late, visit_gap_ms

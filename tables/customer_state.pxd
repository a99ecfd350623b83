# The state's classes as extension types when compiled (app/speedups.py): the compiled
# rules, which cimport them, read their fields as C struct members.

cdef class SessionSummary:
    cdef public object steps, cart_changes, cart_flips, field_focus, form_errors, form_spans
    cdef public object searches, search_result_ts_ms, error_ts

cdef class SessionState:
    cdef public object session_id, started_ts_ms, last_ts_ms, event_count, last_event_id
    cdef public object page, product_id, step, cart_value, cart_items, purchased, recent
    cdef public object failed_payment_attempts, fired_reasons, bot, fast_gaps
    cdef public object product_views, product_view_ts_ms
    cdef public SessionSummary summary

cdef class CustomerProfile:
    cdef public object first_seen_ts_ms, last_seen_ts_ms, visits, events, purchases
    cdef public object last_purchase_ts_ms, revenue, late_events, last_visit_ts_ms
    cdef public object gap_mean_ms, gap_var_ms2, visit_events_mean, last_visit_events
    cdef public object pace_mean_ms, pace_var_ms2, last_pace_ratio, bot_visits

cdef class SignalRecord:
    cdef public object name, score, ts_ms, event_id

cdef class CustomerState:
    cdef public object customer_id
    cdef public CustomerProfile profile
    cdef public object sessions, segment, seen_event_digests, seen_session_ids
    cdef public object ended_sessions, rewarded, signals, interventions, clicks_offset

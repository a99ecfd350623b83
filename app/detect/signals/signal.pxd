from app.detect.signals.thresholds cimport SignalThresholds
from app.ingest.events cimport ClickEvent
from tables.customer_state cimport CustomerState, SessionState

cdef class DetectionContext:
    cdef public CustomerState state
    cdef public SessionState session
    cdef public ClickEvent event
    cdef public object now_ms
    cdef public SignalThresholds thresholds
    cdef public object visit_gap_ms

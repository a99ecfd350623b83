from app.detect.signals.signal cimport DetectionContext
from app.detect.signals.thresholds cimport SignalThresholds
from app.detect.state cimport Folded, StateLimits, TimeRules
from app.ingest.events cimport ClickEvent
from tables.customer_state cimport CustomerState, SessionState


cdef class Rules:
    cdef readonly SignalThresholds thresholds
    cdef readonly StateLimits limits
    cdef readonly TimeRules time
    cdef readonly object policy

from app.detect.signals.thresholds cimport SignalThresholds
from app.detect.signals.signal cimport DetectionContext
from app.ingest.events cimport ClickEvent
from tables.customer_state cimport SessionState

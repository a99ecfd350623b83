from app.detect.signals.signal cimport DetectionContext
from app.detect.signals.thresholds cimport SignalThresholds
from tables.customer_state cimport SessionState

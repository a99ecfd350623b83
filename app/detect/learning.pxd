from app.detect.pipeline cimport Rules
from app.ingest.events cimport ClickEvent
from tables.customer_state cimport CustomerProfile, CustomerState, SessionState

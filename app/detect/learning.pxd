from app.ingest.events cimport ClickEvent
from tables.customer_state cimport CustomerProfile, CustomerState, SessionState

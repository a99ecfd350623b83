from app.ingest.events cimport ClickEvent
from tables.customer_state cimport CustomerState

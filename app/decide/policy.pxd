from tables.customer_state cimport CustomerState, SessionState

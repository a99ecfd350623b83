from tables.customer_state cimport CustomerProfile, CustomerState, SessionState

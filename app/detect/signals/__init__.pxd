from tables.customer_state cimport SessionState

cdef class ClickEvent:
    cdef public object event_id, customer_id, session_id, type, ts_ms, page, product_id
    cdef public object element, x, y, scroll_pct, field, step, value, query, results
    cdef public object error, props

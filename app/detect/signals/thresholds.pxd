cdef class SignalThresholds:
    cdef readonly object rage_click_min_clicks, rage_click_window_ms
    cdef readonly object rage_click_radius_px, dead_click_wait_ms
    cdef readonly object dead_click_min_clicks, dead_click_window_ms
    cdef readonly object payment_failed_attempts, step_loop_min_regressions
    cdef readonly object form_field_min_focus, form_min_errors, form_slow_ms
    cdef readonly object checkout_stall_ms, product_min_views, product_dwell_ms
    cdef readonly object product_idle_ms, search_min_zero_results
    cdef readonly object search_min_reformulations, search_window_ms
    cdef readonly object error_burst_min_errors, error_burst_window_ms
    cdef readonly object cart_idle_ms, rhythm_min_visits, rhythm_gap_factor
    cdef readonly object rhythm_visit_share, rhythm_pace_factor, bot_min_events
    cdef readonly object bot_min_events_again, bot_gap_ms, bot_fast_share
    cdef readonly object click_rules

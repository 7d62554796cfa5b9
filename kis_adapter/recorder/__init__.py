"""
The unattended recorder behind ``kis-adapter record``: schedule, universe, sharding, service, metrics.

::

    schedule ─ which KRX days, connect/disconnect times (pure)      clock ─ real or simulated time
    universe ─ which codes, from the day's master (pure)            masters ─ the day's master file
    shards ───── (TR × code) registrations over the app keys (pure)
    service ─── sleeps until a window, records it with `day.DayRecorder` (N sessions → one capture),
                again every session day                              metrics ─ Prometheus exposition

The pure modules take the calendar and times as arguments and never read the clock, so a month of
plans or a week of days can be checked in milliseconds.
"""

"""Pure rules of the win-back engine: no I/O here, `now` is always a parameter.

`model` holds the campaign configuration and the enrolment state, `machine` moves an enrolment
through its sequence and says what should happen, `audience` and `sequences` decide who enters
which ready-made campaign, `pacing` decides when a message may go, and `uplift` measures what
the campaigns recovered against the control group.
"""

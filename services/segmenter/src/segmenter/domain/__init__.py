"""Pure rules of the portfolio: no I/O here, `now` is always a parameter."""

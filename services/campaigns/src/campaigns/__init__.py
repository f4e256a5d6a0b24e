"""Cartera campaigns: the win-back engine and its delivery (its issue builds the engine)."""

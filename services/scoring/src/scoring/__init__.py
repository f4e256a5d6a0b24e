"""Cartera scoring: value models, lifetime value, lead scores (its issue builds the models)."""

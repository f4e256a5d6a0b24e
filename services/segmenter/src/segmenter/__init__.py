"""Cartera segmenter: turns the event stream into the customer portfolio."""

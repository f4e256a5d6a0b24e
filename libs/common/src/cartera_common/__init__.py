"""Shared plumbing for every Cartera service, written once."""

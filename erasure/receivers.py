"""Subscriptions of the erasure app to the memory store's signals."""

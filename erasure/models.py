"""Erasure requests (filled in by the erasure issue)."""

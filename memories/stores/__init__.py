"""Memory stores an erasure reaches: the built-in store and connected Mem0 deployments (see base.py)."""

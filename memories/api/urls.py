"""Routes of the Mem0-compatible memory API (CONTRACT.md "Memory store API")."""

urlpatterns: list = []

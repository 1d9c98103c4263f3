import pytest

# Shared assertion helpers: rewritten like test modules, so a failed check shows the values it compared.
pytest.register_assert_rewrite("tests.memories.deletion_checks")

"""The Data Rights Protocol 1.0, Covered Business side: authorized agents (registered by staff with their Ed25519
verify key) pair, exercise `deletion`, read the status and revoke; we call their `status_callback` on every change.
A deletion exercise becomes an ErasureRequest (channel `drp`) through the same service as every other channel."""

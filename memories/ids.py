"""Time-ordered memory ids (UUIDv7, RFC 9562): 48-bit Unix milliseconds, version 7, variant, 74 random bits.

New rows land at the right edge of every (entity, id) index, a subject's memories sort in the order they were
written (so the engine's keyset batches walk the heap in roughly physical order), and an id tells the engine the
earliest instant its row can have been written: a straggler pass only has to look at ids from the pass's start
on (memories/engine/). To clients they are ordinary UUIDs, as Mem0's are.
"""

import datetime
import os
import time
import uuid

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (ms & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | ((rand >> 62) & _RAND_A) << 64
        | 0b10 << 62
        | rand & _RAND_B
    )
    return uuid.UUID(int=value)


def uuid7_floor(moment: datetime.datetime) -> uuid.UUID:
    """A UUID at or below every UUIDv7 generated at or after `moment` (its bits after the timestamp all zero)."""
    ms = int(moment.timestamp() * 1000)
    return uuid.UUID(int=max(ms, 0) << 80)

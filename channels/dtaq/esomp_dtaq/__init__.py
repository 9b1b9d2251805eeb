"""E-SOMP DTAQ channel: IBM i style data queues and the supervised service pool of seed 003 (3.2)."""
from esomp_dtaq.backends import open_backend
from esomp_dtaq.queues import (BadKey, DataQueue, DataTooLong, Entry, NoSuchQueue, Order, QueueAttributes,
                               QueueError, QueueFull, pad_key)

__all__ = ["BadKey", "DataQueue", "DataTooLong", "Entry", "NoSuchQueue", "Order", "QueueAttributes", "QueueError",
           "QueueFull", "open_backend", "pad_key"]

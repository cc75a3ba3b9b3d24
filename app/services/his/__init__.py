"""The HIS side: the outbox (a write recorded in the caller's transaction), its delivery (sent, retried,
flagged, and its outcome applied through the table of write kinds), each clinic's HIS client, and the
day's writes as the HIS API shows them.

What other packages may call:
"""
from app.services.his.delivery import Performed, WriteKind, WriteRequest, redrive, register_kind, send
from app.services.his.gateway import his_client
from app.services.his.ledger import ledger_file, writes_on
from app.services.his.outbox import (
    count_writes,
    order_writes,
    record_order_write,
    record_request_write,
    record_write,
    request_write,
)

__all__ = ["Performed", "WriteKind", "WriteRequest", "count_writes", "his_client", "ledger_file", "order_writes",
           "record_order_write", "record_request_write", "record_write", "redrive", "register_kind",
           "request_write", "send", "writes_on"]

"""The HL7 v2 interface: MLLP in and out, durable inbox, dead letters and outbound queue.

- ``mllp``: framing (sans-IO); ``ack``: ACK/NAK with ERR; ``header``: sender and control id
- ``ingest``: message → FHIR transaction + inbox row + AuditEvent in one commit, then the ACK
- ``server``/``listen``: the asyncio listener; ``client``: a blocking MLLP client
- ``replay``: dead letters again; ``outbound_queue``: delivery with retry, in order per destination
- ``commands``: the ``telehub hl7`` click group
The mapping itself is pure and lives in :mod:`mappers.hl7v2` (inbound) and
:mod:`mappers.hl7v2.outbound`.
"""

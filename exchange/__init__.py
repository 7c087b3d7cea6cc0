"""Node-to-node exchange (hdx.exchange.v1): identity and keys, signed envelopes,
outbox delivery, inbox, status mapping and the end-to-end SLA.

Depends on `node.services`; `node` never imports it.
"""

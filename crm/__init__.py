"""What leaves loyalsync for a seller's CRM: signed webhooks (`crm.webhooks`) for any receiver.

Layer: beside `sync` and `loyalty`; it reads the store (orders, the ledger, the actions outbox) and
its own outbox tables (`store.crm_tables`), and imports neither of them.
"""

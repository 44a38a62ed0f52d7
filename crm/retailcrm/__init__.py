"""RetailCRM (Simla): the client and the emulator of the operations the CRM sink will use.

The sink itself (customers, orders, loyalty accounts and credits through the outbox) is not built
yet; see the closing note of issue 23.
"""

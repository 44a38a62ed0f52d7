"""Loyalty engine: rules, ledger, policy gate, actions outbox, segments, reports."""

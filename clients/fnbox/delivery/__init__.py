"""Delivery workers: bus → destination (and insert) functions, retries, dead-letter queue."""

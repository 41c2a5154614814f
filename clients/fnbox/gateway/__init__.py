"""Webhook gateway: HTTP ingestion → durable bus → source functions → events on the bus."""

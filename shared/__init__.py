"""Disposisi's own shared package: event contracts, settings and adapters."""

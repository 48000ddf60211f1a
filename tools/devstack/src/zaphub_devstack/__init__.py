"""Embedded NATS and PostgreSQL, the `zaphub-stack` dev supervisor, and the pytest fixtures built on them."""

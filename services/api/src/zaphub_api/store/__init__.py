"""PostgreSQL access of the API: migrations and one repository module per table group."""

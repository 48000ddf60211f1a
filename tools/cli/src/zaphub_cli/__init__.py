"""The `zaphub` command line: a client of the ZapHub REST API."""

"""ZapHub v1 contracts: everything that crosses a process boundary (models, subjects, streams)."""

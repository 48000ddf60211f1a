"""ZapHub package."""

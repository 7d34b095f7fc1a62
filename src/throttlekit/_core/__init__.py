"""The pure core: no I/O, no httpx, no sleeping; time is always an argument."""

"""Integration tests of the procrastinate 3 backend against real PostgreSQL and a real procrastinate worker."""

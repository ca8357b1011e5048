"""Peers run by the interop tests: a procrastinate app (Python) and pg-boss scripts (Node, `*.mjs`)."""

"""Peers run by the interop tests: a procrastinate app (Python) and pg-boss scripts (`*.mjs`, run on the pinned
Node 22 that `nodejs.node_binary()` finds under node_modules)."""

"""Watchers and aliases: re-emit stuck work, report stalled jobs, move jobs off renamed queues.

`plan` holds the pure decisions (which entities to re-emit given the ledger's counts, which aliases move
where); `passes` runs them against the databases, one transaction per pass on the queue database.
"""

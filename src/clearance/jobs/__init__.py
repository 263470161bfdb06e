"""Queued work for `clearance worker`: document verifications (OCR, face match, liveness), off the
serving processes.

One `jobs` table on SQLite and PostgreSQL alike (`service.py`). A runner claims the oldest job
that is due with one conditional UPDATE: on PostgreSQL its subquery takes the row `FOR UPDATE SKIP
LOCKED`, so runners on any number of hosts never wait on each other's rows; on SQLite the claim
is a write transaction (`BEGIN IMMEDIATE`), one writer at a time, which is all SQLite has.
Why a table of our own rather than procrastinate or pgqueuer: both are PostgreSQL-only, and the
embedded default (SQLite, one command) needs the same queue; one code path serves both backends
with no new dependency; and what a job must guarantee here (its result written in the same
transaction as the fence check, the evidence referenced by vault id, never carried in a payload)
is ours to write either way.

A claim is a lease (`locked_until`): a runner that dies, or a host that vanishes, leaves a job
that the next claim after the lease takes again. Every claim bumps `attempts`, and a holder's
writes are conditioned on it, so a runner whose lease was taken over can store nothing.
`runner.py` runs jobs in processes the worker can kill (the time limit); `worker.py` is that
supervisor, `verification.py` the one kind of job so far.
"""

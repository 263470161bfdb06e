"""The job queue's tables, on the shared metadata (migrations 0020, 0021).

jobs         one row per queued piece of work: its kind, whose it is, a payload of references
             (vault ids, never images or personal data), the lease of the worker running it, and
             its result
job_latency  the histogram of finished jobs' latencies (queued to finished) per kind and
             outcome: one row per bucket, counted in the transaction that ends the job, so it
             outlives the purge of finished jobs and counts a job once whichever worker ran it
"""

from __future__ import annotations

import sqlalchemy as sa

from clearance.store.tables import UTC_TIME, metadata

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    # queued | running | done | rejected; the claim reads (state, run_after) in id order.
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("payload", sa.JSON, nullable=False),
    # {"case": id} once the work's own result is stored (written in that result's transaction),
    # {"reason": text} when the job is rejected.
    sa.Column("result", sa.JSON, nullable=True),
    # Bumped by every claim: the fence a holder's writes are conditioned on.
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("run_after", UTC_TIME, nullable=False),  # not before (the back-off of a retry)
    sa.Column("locked_until", UTC_TIME, nullable=True),  # the lease of the running attempt
    sa.Column("locked_by", sa.String(100), nullable=True),  # host:pid of the runner
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("started_at", UTC_TIME, nullable=True),
    sa.Column("finished_at", UTC_TIME, nullable=True),
)

job_latency = sa.Table(
    "job_latency",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("outcome", sa.String(16), primary_key=True),  # done | rejected
    # The index of the first bound of jobs.metrics.LATENCY_BUCKETS the latency is within; one
    # past the last for longer ones (+Inf). Not cumulative: a job adds to one row.
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("jobs", sa.BigInteger, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),  # the sum of their latencies
)

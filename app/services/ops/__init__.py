"""Operations: what is owed and stuck, for the metrics, the readiness probe and the administrators' queue screens.

The dispatcher's heartbeat; the backlog of every table of work the dispatcher leases from (the lease specs are
handed in by the caller, who owns them: workers/dispatcher.py); the rq queues' depths and failed jobs, and putting
one back; HIS writes flagged for a person, and sending one again; and what a row of work belongs to (its clinic,
its order), for scoping and for the workers' log lines.

What other packages may call:
"""
from app.services.ops.flagged import flagged_writes, retry
from app.services.ops.heartbeat import Heartbeat, beat, heartbeat_key, last_beat
from app.services.ops.queues import FailedJob, QueueDepth, depths, failed_jobs, requeue
from app.services.ops.rows import clinic_ids_of, order_no_of
from app.services.ops.work import Backlog, WorkSpec, backlog_of, backlogs

__all__ = ["Backlog", "FailedJob", "Heartbeat", "QueueDepth", "WorkSpec", "backlog_of", "backlogs", "beat",
           "clinic_ids_of", "depths", "failed_jobs", "flagged_writes", "heartbeat_key", "last_beat",
           "order_no_of", "requeue", "retry"]

"""The tamper-evident audit log: RFC 9162 Merkle tree, C2SP signed checkpoints and tiles.

Writers use `clearance.audit.service.AuditLog` (the gateway awaits its `sequencer`) with entries
built by `clearance.audit.entries`; auditors use `routes.audit_app` and `verify.verify_log`.
"""

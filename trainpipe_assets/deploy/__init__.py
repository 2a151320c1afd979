"""Deployment components: InfraValidator (with its sandboxed server), Pusher, rollback, BulkInferrer and
evaluation after deployment (monitoring)."""

"""Deployment components: InfraValidator (with its sandboxed server), Pusher, rollback and BulkInferrer."""

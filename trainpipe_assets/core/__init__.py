"""The ground floor: settings, artifacts, storage (the one write-then-rename), event-log queries, metadata keys,
cache, partitions, retries, the step helper and the IO managers. Imports no other sub-package."""

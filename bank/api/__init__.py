"""HTTP plumbing every app's API shares: the error shape, Idempotency-Key
replay, signed-request checks, and the ledger's own endpoints."""

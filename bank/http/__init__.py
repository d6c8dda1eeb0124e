"""HTTP plumbing every app's API and pages share: the error shape and handler,
token authentication, Idempotency-Key replay with stored responses, signed
requests, the /api/ edge middleware, the schema's shared pieces, and how a
service's typed error is shown on a page for people (render). It holds no
endpoint: the ledger's own are in bank.api, each app's in its own api package."""

"""The ledger's own public endpoints (block headers, validators). The plumbing
every app's API shares is in bank.http."""

"""What the services and the selectors both need: the token's rules (fee tiers, spend
order, benefit caps, the ledger accounts' codes) and the reads they rest on (the rule
in force, a person's usage, where a merchant's next settlement line starts).

Never writes, and never imports voucher.services or voucher.selectors, so that both
may import it without a cycle."""

"""The codes of the token's own ledger accounts (voucher.services.common opens them)."""

RESERVE_CODE = "voucher:reserve:KRW"
ISSUANCE_CODE = "voucher:issuance:BKRW"
BANK_PARTY_REF = "consortium:bank"

"""Typed errors of the ledger. Each has a stable `code` that the API, the
admin and the tests use, and the HTTP status it maps to in one place."""


class BankError(Exception):
    code = "bank_error"
    http_status = 400
    message = "The ledger refused the request."

    def __init__(self, message: str | None = None, **details):
        self.details = details
        super().__init__(message or self.message)

    @property
    def text(self) -> str:
        return str(self)


class InvalidEntry(BankError):
    code = "invalid_entry"
    message = "The entry is malformed."


class InvalidAmount(BankError):
    code = "invalid_amount"
    message = "Amounts must be non-zero whole numbers of won."


class UnbalancedEntry(BankError):
    code = "unbalanced_entry"
    message = "The postings of an entry must sum to zero in each currency."


class CurrencyMismatch(BankError):
    code = "currency_mismatch"
    message = "A posting's currency differs from its account's."


class InvalidAccount(BankError):
    code = "invalid_account"
    message = "This account cannot be used here."


class AccountNotFound(BankError):
    code = "account_not_found"
    http_status = 404
    message = "No such account."


class AccountFrozen(BankError):
    code = "account_frozen"
    http_status = 403
    message = "The account is frozen."


class AccountClosed(BankError):
    code = "account_closed"
    http_status = 403
    message = "The account is closed."


class InsufficientFunds(BankError):
    code = "insufficient_funds"
    http_status = 409
    message = "The available balance is too low."


class IdempotencyConflict(BankError):
    code = "idempotency_conflict"
    http_status = 409
    message = "This idempotency key was already used for a different request."


class AlreadyReversed(BankError):
    code = "already_reversed"
    http_status = 409
    message = "The entry has already been reversed."


class HoldNotOpen(BankError):
    code = "hold_not_open"
    http_status = 409
    message = "The hold is no longer open."


class HoldExpired(BankError):
    code = "hold_expired"
    http_status = 409
    message = "The hold has expired."


class CaptureExceedsHold(BankError):
    code = "capture_exceeds_hold"
    message = "A capture may not exceed the amount held."


class ValidatorKeyMissing(BankError):
    code = "validator_key_missing"
    http_status = 503
    message = "Not enough validator keys are available to attest a block."


class InvalidPublicKey(BankError):
    code = "invalid_public_key"
    message = "The public key is not a valid secp256k1 point."


class DeviceKeyUnknown(BankError):
    code = "device_key_unknown"
    http_status = 401
    message = "No active device key with this id belongs to you."


class SignatureMissing(BankError):
    code = "signature_missing"
    http_status = 401
    message = "This request must be signed by a registered device key."


class DeviceProofInvalid(BankError):
    code = "device_proof_invalid"
    http_status = 400
    message = "The proof is not a signature of the registration message by the new key."


class SignatureInvalid(BankError):
    code = "signature_invalid"
    http_status = 401
    message = "The request signature does not match the device key."


class SignatureMalleable(BankError):
    code = "signature_malleable"
    http_status = 401
    message = "Only low-s signatures are accepted."


class TimestampOutOfWindow(BankError):
    code = "timestamp_out_of_window"
    http_status = 401
    message = "The signed timestamp is too far from the server's clock."


class NonceReplayed(BankError):
    code = "nonce_replayed"
    http_status = 409
    message = "This signed request was already used."


class EnrollmentCodeRequired(BankError):
    code = "enrollment_code_required"
    http_status = 403
    message = (
        "This holder has no active device key to sign the enrollment: enroll with the one-time code "
        "the bank's counter gives after checking your identity."
    )


class EnrollmentCodeInvalid(BankError):
    code = "enrollment_code_invalid"
    http_status = 403
    message = "The enrollment code is unknown, already used, replaced or expired; ask the bank for a new one."


class IdempotencyKeyRequired(BankError):
    code = "idempotency_key_required"
    message = "Money-moving requests need an Idempotency-Key header (1 to 100 printable characters)."


class IdempotencyKeyReused(BankError):
    code = "idempotency_key_reused"
    http_status = 409
    message = "This Idempotency-Key was already used with a different request."


class MakerCheckerViolation(BankError):
    code = "maker_checker_violation"
    http_status = 403
    message = "The staff member who made a request cannot approve it."


class DuplicateApproval(BankError):
    code = "duplicate_approval"
    http_status = 409
    message = "This staff member already approved the request; another approver is needed."


class ApprovalNotPending(BankError):
    code = "approval_not_pending"
    http_status = 409
    message = "The request was already decided."


class ApprovalRequired(BankError):
    code = "approval_required"
    http_status = 409
    message = "This change needs a second staff member's approval."


class RoleRequired(BankError):
    code = "role_required"
    http_status = 403
    message = "Your staff role does not allow this."


class PaymentsPaused(BankError):
    # 503: the service is deliberately unavailable for a while and the same
    # request will succeed once the bank resumes (423 Locked is WebDAV's, about one resource).
    code = "payments_paused"
    http_status = 503
    message = "Payments and transfers are paused by the bank; try again later."


class AccountBusy(BankError):
    # Only from deferred_balances: a bulk writer that waited too long for a house
    # account rolls back and runs again, rather than risk a deadlock (see there).
    code = "account_busy"
    http_status = 503
    message = "An account the entry needs stayed locked by another transaction; try again."


class MinterAllowanceExceeded(BankError):
    code = "minter_allowance_exceeded"
    http_status = 409
    message = "The minter's allowance does not cover this mint."


# --- back office (issue 6, oversight) --------------------------------------------------------


class LoginLocked(BankError):
    """Too many failed logins of one (normalised) username from one address: every
    login of that pair is refused, the right password too, until the lockout ends."""

    code = "login_locked"
    http_status = 429
    message = "Too many failed logins. Try again later."


# --- counter cash (issue 13) ---------------------------------------------------------------------


class VaultCashInsufficient(BankError):
    code = "vault_cash_insufficient"
    http_status = 409
    message = "The vault does not hold that much cash."


# --- signed payloads of devices (issue 14) -------------------------------------------------------


class PayloadNotCanonical(BankError):
    code = "payload_not_canonical"
    message = "The payload has no canonical JSON form (integers, text, true, false, null; ASCII keys)."


class SignatureReplayed(BankError):
    code = "signature_replayed"
    http_status = 409
    message = "This device already signed a payload with this nonce for this use."


class SequenceNotIncreasing(BankError):
    code = "sequence_not_increasing"
    http_status = 409
    message = "The payload's sequence number is not above the last one this device sent for this use."


class InvalidDigest(BankError):
    code = "invalid_digest"
    message = "A document digest is exactly 32 bytes (a SHA-256)."


class InvalidDocumentKind(BankError):
    code = "invalid_document_kind"
    message = "A document kind is dotted lowercase words, such as coldchain.event."


class InvalidDocumentReference(BankError):
    code = "invalid_document_reference"
    message = "A document reference is a short opaque id: letters, digits and . _ : - only."


class DocumentNotSealed(BankError):
    code = "document_not_sealed"
    http_status = 409
    message = "The document is not sealed into a block yet."

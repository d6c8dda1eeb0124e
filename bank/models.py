"""Tables of the ledger: parties, accounts, journal entries, postings, holds,
blocks, attestations, validator keys and the audit log.

No money moves here: only bank.services writes postings and balances. Ledger
rows hold opaque ids and hashes only, never a person's data, so erasing a
person's profile elsewhere never breaks a hash.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImmutableRowError(Exception):
    """Raised when code tries to change or delete an append-only row."""


class AppendOnlyModel(models.Model):
    """A row that may be inserted once and never changed or deleted.

    PostgreSQL enforces the same with triggers (migration 0002), so raw SQL
    and bulk updates are refused there too.
    """

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRowError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRowError(f"{type(self).__name__} rows are append-only")


class Currency(models.TextChoices):
    KRW = "KRW", _("Korean won (bank money)")
    BKRW = "BKRW", _("BKRW token")


class Party(models.Model):
    """Someone who owns accounts. `external_ref` is an opaque id; names live outside the ledger."""

    class Kind(models.TextChoices):
        PERSON = "person", _("person")
        MERCHANT = "merchant", _("merchant")
        BANK = "bank", _("bank")
        CITY = "city", _("city")
        OPERATOR = "operator", _("operator")
        VALIDATOR = "validator", _("validator")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    external_ref = models.CharField(max_length=64, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "parties"

    def __str__(self):
        return self.display_name or self.external_ref


class Account(models.Model):
    """A balance in one currency.

    Sign convention (one for the whole ledger): a posting's amount is positive
    for a credit and negative for a debit, and `balance` is the sum of the
    account's postings. A credit-normal account (liability, equity, income) such
    as a customer's deposit or wallet therefore holds a positive balance; a
    debit-normal one (asset, expense) such as the reserve holds a negative one.
    `natural_balance` shows each the way an accountant reads it.
    """

    class NormalSide(models.TextChoices):
        ASSET = "asset", _("asset")
        LIABILITY = "liability", _("liability")
        EQUITY = "equity", _("equity")
        INCOME = "income", _("income")
        EXPENSE = "expense", _("expense")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        FROZEN = "frozen", _("frozen")
        CLOSED = "closed", _("closed")

    DEBIT_NORMAL = frozenset({NormalSide.ASSET, NormalSide.EXPENSE})

    owner = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="accounts")
    code = models.CharField(max_length=64, unique=True, help_text="Stable opaque name, e.g. 'bank:reserve:KRW'.")
    currency = models.CharField(max_length=8, choices=Currency.choices)
    normal_side = models.CharField(max_length=16, choices=NormalSide.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    may_go_negative = models.BooleanField(
        default=False, help_text="Off for every customer account: its available balance may not drop below zero."
    )
    balance = models.BigIntegerField(default=0, help_text="Cached sum of postings (credit positive).")
    on_hold = models.BigIntegerField(default=0, help_text="Cached sum of open holds on this account.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(on_hold__gte=0), name="account_on_hold_not_negative")]

    def __str__(self):
        return self.code

    @property
    def sign(self) -> int:
        return -1 if self.normal_side in self.DEBIT_NORMAL else 1

    @property
    def natural_balance(self) -> int:
        return self.sign * self.balance

    @property
    def available(self) -> int:
        """What may still be spent: natural balance less open holds."""
        return self.natural_balance - self.on_hold


class JournalEntry(AppendOnlyModel):
    """One balanced transaction: two or more postings summing to zero per currency.

    `hash` is the SHA-256 of the entry's canonical bytes (bank.hashing). The
    only change ever made to a row is sealing: `block` goes from empty to the
    block that attests it, once.
    """

    uid = models.UUIDField(unique=True, editable=False)
    kind = models.CharField(max_length=40)
    memo = models.CharField(max_length=200, blank=True)
    reference = models.CharField(max_length=100, blank=True)
    # NULL, not "", for entries without a key: the unique constraint ignores NULLs.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    request_hash = models.CharField(max_length=64, help_text="Digest of the request, to tell a retry from a conflict.")
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by")
    created_at = models.DateTimeField()
    hash = models.CharField(max_length=64)
    block = models.ForeignKey(
        "Block", on_delete=models.PROTECT, null=True, blank=True, related_name="entries", db_index=False
    )

    class Meta:
        verbose_name_plural = "journal entries"
        # Every index here is written by every posting, so only the ones a query
        # uses: no LIKE-pattern copies of the key and reference indexes (nothing
        # searches them by prefix), and block lookups use (block, id).
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="entry_idempotency_key_unique")]
        indexes = [
            models.Index(fields=["reference"], name="entry_reference"),
            models.Index(fields=["block", "id"], name="entry_block_id"),
            models.Index(fields=["id"], condition=models.Q(block__isnull=True), name="entry_unsealed"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.kind}"

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if not self._state.adding and update_fields is not None and set(update_fields) == {"block"}:
            models.Model.save(self, *args, **kwargs)  # sealing, the one permitted change
            return
        super().save(*args, **kwargs)


# The most won one ledger line, hold or money input may carry (1 trillion won):
# far above any payment, mint or counter cash, and 9 million times below
# PostgreSQL's bigint, so balances summed from such lines stay inside it. Every
# form, serializer and service bounds amounts with this one constant.
MAX_AMOUNT = 10**12
# What a bigint column holds: the bound of won figures that are not ledger
# amounts (a merchant's annual revenue, a tier's revenue ceiling).
BIGINT_MAX = 2**63 - 1


class Posting(AppendOnlyModel):
    """One line of an entry: a signed amount on one account (credit positive)."""

    # Checked once per INSERT by a trigger, not per row by a foreign key (migration 0012).
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings", db_constraint=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings", db_constraint=False)
    currency = models.CharField(max_length=8, choices=Currency.choices)
    amount = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="posting_amount_not_zero")]

    def __str__(self):
        return f"{self.account_id} {self.amount:+d} {self.currency}"


class Hold(models.Model):
    """A two-phase transfer: `amount` reserved on `account`, later captured to `destination`, voided or expired."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        CAPTURED = "captured", _("captured")
        VOIDED = "voided", _("voided")
        EXPIRED = "expired", _("expired")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    destination = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="incoming_holds")
    amount = models.BigIntegerField()
    captured_amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    kind = models.CharField(max_length=40)
    reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    request_hash = models.CharField(max_length=64)
    capture_entry = models.OneToOneField(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="captured_hold"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="hold_amount_positive")]
        indexes = [models.Index(fields=["expires_at"], condition=models.Q(status="open"), name="hold_open_expiry")]

    def __str__(self):
        return f"hold #{self.pk} {self.amount} on {self.account_id} ({self.status})"


class LedgerChain(models.Model):
    """The single row sealers lock, so that two sealers never extend the chain at once."""

    name = models.CharField(max_length=16, unique=True, default="main")

    def __str__(self):
        return self.name


class Block(models.Model):
    """A sealed batch of entries and notarized documents. The header
    (bank.hashing.block_header_bytes, by `version`) links to the previous block."""

    height = models.PositiveBigIntegerField(unique=True)
    # 1: entries only, the header of docs/PROOFS.md before notarized documents;
    # 2: entries then documents, domain-separated leaves, both counts in the header.
    version = models.PositiveSmallIntegerField(default=1)
    prev_hash = models.CharField(max_length=64)
    merkle_root = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()
    entry_count = models.PositiveIntegerField()
    document_count = models.PositiveIntegerField(default=0)
    hash = models.CharField(max_length=64, unique=True)
    aggregate_signature = models.CharField(max_length=192, help_text="BLS12-381 aggregate over the header, hex.")

    class Meta:
        ordering = ["height"]

    def __str__(self):
        return f"block {self.height}"


class NotarizedDocument(AppendOnlyModel):
    """An opaque 32-byte digest of something outside the ledger (a video, an EPCIS
    event, a sensor batch, an audit row), sealed into a block as a Merkle leaf.

    Written only by bank.services.notarize. No file contents and no personal data:
    `reference` is an opaque id the caller's app resolves. Like an entry, the one
    change ever made to a row is sealing (block and leaf_index, once).
    """

    digest = models.BinaryField(max_length=32)
    kind = models.CharField(max_length=40)
    reference = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    block = models.ForeignKey(
        Block, on_delete=models.PROTECT, null=True, blank=True, related_name="documents", db_index=False
    )
    leaf_index = models.PositiveIntegerField(null=True, blank=True, help_text="Position among the block's leaves.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["digest", "kind"], name="notarized_document_digest_kind_unique"),
        ]
        indexes = [
            models.Index(fields=["block", "id"], name="document_block_id"),
            models.Index(fields=["id"], condition=models.Q(block__isnull=True), name="document_unsealed"),
        ]

    def __str__(self):
        return f"{self.kind} {bytes(self.digest).hex()[:16]}…"


class ValidatorKey(models.Model):
    """A consortium member's BLS12-381 public key, registered with a proof of possession."""

    name = models.CharField(max_length=40, unique=True)
    party = models.ForeignKey(Party, on_delete=models.PROTECT, null=True, blank=True)
    public_key = models.CharField(max_length=96, unique=True)
    proof_of_possession = models.CharField(max_length=192)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class BlockAttestation(AppendOnlyModel):
    """One validator's signature over one block header."""

    block = models.ForeignKey(Block, on_delete=models.PROTECT, related_name="attestations")
    validator = models.ForeignKey(ValidatorKey, on_delete=models.PROTECT, related_name="attestations")
    signature = models.CharField(max_length=192)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["block", "validator"], name="one_attestation_per_validator")]

    def __str__(self):
        return f"{self.validator_id} signed block #{self.block_id}"


class AuditEvent(AppendOnlyModel):
    """Who did what, when, with the state before and after. Append-only."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    actor_label = models.CharField(max_length=150, help_text="Username or system job, kept if the user is renamed.")
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_type}#{self.target_id}"


class DeviceKey(models.Model):
    """A citizen's, merchant's or sensor's secp256k1 public key. Requests that move
    the party's money must be signed by one of its active keys."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        REVOKED = "revoked", _("revoked")

    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="device_keys")
    public_key = models.CharField(max_length=66, help_text="Compressed SEC1 point, hex.")
    did = models.CharField(max_length=80, db_index=True)
    label = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["party", "public_key"], name="one_device_key_per_party")]

    def __str__(self):
        return f"{self.label or 'device'} of {self.party_id} ({self.status})"


class EnrollmentCode(models.Model):
    """A one-time code a teller hands, after checking the holder's identity, to a
    holder who must enroll a device key without one (a first phone, or after
    the last was revoked). A stolen API token alone can therefore never enroll
    a key. Only the code's SHA-256 is kept; it is bound to one party, expires
    and is used once (bank/services/enrollment.py)."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("issued")
        USED = "used", _("used")
        VOIDED = "voided", _("voided")  # a newer code was issued to the same holder

    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="enrollment_codes")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the normalized code, hex.")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ISSUED)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    device = models.ForeignKey(
        DeviceKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="The key it enrolled."
    )

    class Meta:
        permissions = [("issue_enrollment_code", "Can issue a device enrollment code after identity checks")]

    def __str__(self):
        return f"enrollment code #{self.pk} of {self.party_id} ({self.status})"


class UsedNonce(models.Model):
    """A nonce a device has signed once. The unique constraint is what refuses a replay."""

    device = models.ForeignKey(DeviceKey, on_delete=models.CASCADE, related_name="used_nonces")
    nonce = models.CharField(max_length=64)
    used_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "nonce"], name="nonce_used_once_per_device")]

    def __str__(self):
        return f"{self.device_id}:{self.nonce}"


class StoredResponse(models.Model):
    """The first response to a money-moving API request, replayed byte for byte
    when the client retries with the same Idempotency-Key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_response_per_idempotency_key")]

    def __str__(self):
        return f"{self.user_id}:{self.key} -> {self.status_code}"


class ApprovalRequest(models.Model):
    """A staff change that needs a second pair of eyes (maker-checker).

    The maker files it with the requested change as JSON; other staff with the
    approver role approve or reject it; when enough approvals are in, the
    change runs once, under this row's lock (bank.services.approvals). The
    maker can never approve their own request.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        EXECUTED = "executed", _("executed")
        FAILED = "failed", _("failed")

    kind = models.CharField(max_length=40, db_index=True)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True, help_text="The requested change.")
    reason = models.CharField(max_length=300)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    required_approvals = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_reason = models.CharField(max_length=300, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="What the executed change made, or the error code.")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(required_approvals__gte=1), name="approval_needs_one")]
        permissions = [
            ("approve_request", "Can approve or reject other staff's requests"),
            ("adjust_ledger", "Can request a manual ledger adjustment"),
            ("raise_allowance", "Can request a minter allowance raise"),
            ("pause_payments", "Can pause and resume payments and transfers"),
            ("freeze_account", "Can freeze a ledger account and request its unfreeze"),
            ("export_audit", "Can export the audit log as CSV"),
            ("record_cash", "Can record cash paid in or out at the counter"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.kind} {self.target_type}#{self.target_id} ({self.status})"


class ApprovalVote(AppendOnlyModel):
    """One approver's approval of one request; the unique constraint stops a second vote by the same person."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="votes")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="one_vote_per_approver")]

    def __str__(self):
        return f"{self.approver_id} approved #{self.request_id}"


class MinterAllowance(models.Model):
    """How much BKRW one minter (a service such as wallet top-up, or staff issuance)
    may still create. Every mint uses it up under this row's lock, in the same
    transaction as the mint's entry; only an approved request raises it."""

    minter = models.CharField(max_length=40, unique=True)
    allowance = models.BigIntegerField(default=0, help_text="Won that may still be minted.")
    minted_total = models.BigIntegerField(default=0, help_text="Won minted so far under this allowance.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(allowance__gte=0), name="minter_allowance_not_negative")
        ]

    def __str__(self):
        return f"{self.minter}: {self.allowance:,} won left"


class ControlState(models.Model):
    """The bank-wide incident switches; one row (pk 1). Payments and transfers read
    it without a lock: a pause takes effect for every request that starts after it commits."""

    payments_paused = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "control state"

    def __str__(self):
        return "payments paused" if self.payments_paused else "payments running"


# --- back office: ledger verification runs (issue 6) ---------------------------------------


class VerificationRun(models.Model):
    """One run of verify_ledger started from the back office, its progress and its verdict.
    Only bank.services.verification_runs changes these rows."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        PASSED = "passed", _("passed")
        FAILED = "failed", _("failed")

    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.BigIntegerField(default=0, help_text="Entries checked so far.")
    total = models.BigIntegerField(default=0, help_text="Entries to check.")
    blocks = models.BigIntegerField(default=0)
    accounts = models.BigIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    first_failure = models.TextField(blank=True, default="")
    failures = models.JSONField(default=list, blank=True, help_text="Up to 20 failures, in ledger order.")

    class Meta:
        ordering = ["-started_at", "-pk"]
        permissions = [("start_verificationrun", "Can start a ledger verification run")]

    def __str__(self):
        return f"verification #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.PASSED, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if self.is_finished:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0


class ApiToken(models.Model):
    """A login's API token for the wallet API, stored as the SHA-256 of the token
    (never the token itself): the raw value is shown once, when it is issued.

    The token is 32 random bytes, so a plain digest is as good as a slow hash here
    and lets a login find its row by equality in one indexed lookup (the wallet API's
    hot path). A row is kept after revocation (revoked_at) so the back office can
    tell when and how a login was logged out; the audit log says by whom and why."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True, help_text="Hex SHA-256 of the token.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"], name="api_token_user_expiry")]
        permissions = [("revoke_api_token", "Can log a customer's API tokens out")]

    def __str__(self):
        return f"API token #{self.pk} of user {self.user_id}"


class PayloadNonce(models.Model):
    """A nonce a device signed a payload with (bank.services.signed_payloads), once
    per scope. The unique constraint is what refuses a replay, also between two
    racing uploads; a row is kept until its payload's timestamp window has passed."""

    device = models.ForeignKey(DeviceKey, on_delete=models.CASCADE, related_name="payload_nonces")
    scope = models.CharField(max_length=40)
    nonce = models.CharField(max_length=64)
    used_at = models.DateTimeField()
    forget_after = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "scope", "nonce"], name="payload_nonce_once_per_device_scope")
        ]

    def __str__(self):
        return f"{self.device_id}:{self.scope}:{self.nonce}"


class PayloadSequence(models.Model):
    """The highest sequence number a device (a sensor that cannot keep nonces) has
    signed in a scope; the next payload must carry a higher one."""

    device = models.ForeignKey(DeviceKey, on_delete=models.CASCADE, related_name="payload_sequences")
    scope = models.CharField(max_length=40)
    last_sequence = models.BigIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "scope"], name="one_payload_sequence_per_device_scope")
        ]

    def __str__(self):
        return f"{self.device_id}:{self.scope} at {self.last_sequence}"

"""Tables of the token: wallets and their lots, merchants, voucher programs with
their dated rules, and the records of every money movement (top-ups, benefits,
payments, refunds, transfers, redemptions).

No money moves here and no balance is stored here: every lot is its own BKRW
ledger account, so the ledger stays the one source of balances. Only
voucher.services changes these rows, and only through bank.services.post_entry.
"""

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from bank.models import Account, DeviceKey, Hold, JournalEntry, Party

BASIS_POINTS = 10_000  # rates are whole basis points (1000 = 10%), so bonus arithmetic stays in integers


class KycTier(models.TextChoices):
    NAMED = "named", _("named (verified)")
    ANONYMOUS = "anonymous", _("anonymous")


class District(models.TextChoices):
    """Busan's 15 districts (gu) and one county (gun)."""

    JUNG = "jung", _("Jung-gu")
    SEO = "seo", _("Seo-gu")
    DONG = "dong", _("Dong-gu")
    YEONGDO = "yeongdo", _("Yeongdo-gu")
    BUSANJIN = "busanjin", _("Busanjin-gu")
    DONGNAE = "dongnae", _("Dongnae-gu")
    NAM = "nam", _("Nam-gu")
    BUK = "buk", _("Buk-gu")
    HAEUNDAE = "haeundae", _("Haeundae-gu")
    SAHA = "saha", _("Saha-gu")
    GEUMJEONG = "geumjeong", _("Geumjeong-gu")
    GANGSEO = "gangseo", _("Gangseo-gu")
    YEONJE = "yeonje", _("Yeonje-gu")
    SUYEONG = "suyeong", _("Suyeong-gu")
    SASANG = "sasang", _("Sasang-gu")
    GIJANG = "gijang", _("Gijang-gun")


class MerchantCategory(models.TextChoices):
    RESTAURANT = "restaurant", _("restaurant")
    CAFE = "cafe", _("cafe")
    FISH_MARKET = "fish_market", _("fish market")
    GROCERY = "grocery", _("grocery")
    BOOKSTORE = "bookstore", _("bookstore")
    ATTRACTION = "attraction", _("attraction")
    LODGING = "lodging", _("lodging")
    TOUR_OPERATOR = "tour_operator", _("tour operator")
    PHARMACY = "pharmacy", _("pharmacy")
    RETAIL = "retail", _("retail shop")
    WHOLESALE = "wholesale", _("wholesale supplier")
    DEPARTMENT_STORE = "department_store", _("department store")
    LARGE_MART = "large_mart", _("large mart")
    FRANCHISE_DIRECT = "franchise_direct", _("large company's directly run store")
    GAMBLING = "gambling", _("gambling")
    ADULT_ENTERTAINMENT = "adult_entertainment", _("adult entertainment")


# The local-currency ordinance keeps these out of purpose-bound money, so a new
# program excludes them unless staff decide otherwise. Plain paid-in tokens are
# accepted at every registered merchant.
LARGE_STORE_CATEGORIES = (
    MerchantCategory.DEPARTMENT_STORE,
    MerchantCategory.LARGE_MART,
    MerchantCategory.FRANCHISE_DIRECT,
    MerchantCategory.GAMBLING,
    MerchantCategory.ADULT_ENTERTAINMENT,
)


def default_excluded_categories() -> list[str]:
    return [str(category) for category in LARGE_STORE_CATEGORIES]


class Wallet(models.Model):
    """A citizen's (or tourist's) token wallet. Its balance is the sum of its lots' ledger accounts."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        FROZEN = "frozen", _("frozen")

    owner = models.OneToOneField(Party, on_delete=models.PROTECT, related_name="wallet")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="wallet"
    )
    deposit_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", help_text="The owner's KRW bank deposit account."
    )
    kyc_tier = models.CharField(max_length=12, choices=KycTier.choices, default=KycTier.NAMED)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [
            ("freeze_wallet", "Can freeze a wallet and request its unfreeze"),
            ("seize_wallet", "Can request the seizure of a frozen wallet under a court order"),
            ("change_kyc_tier", "Can change a wallet's KYC tier"),
        ]

    def __str__(self):
        return f"wallet #{self.pk} ({self.owner})"


class Merchant(models.Model):
    """A registered shop. Only registered, active merchants may receive the token."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        FROZEN = "frozen", _("frozen")

    party = models.OneToOneField(Party, on_delete=models.PROTECT, related_name="merchant")
    name = models.CharField(max_length=200)
    business_registration_number = models.CharField(
        max_length=12, unique=True, help_text="Korean business registration number, 123-45-67890."
    )
    category = models.CharField(max_length=24, choices=MerchantCategory.choices)
    district = models.CharField(max_length=12, choices=District.choices)
    annual_revenue = models.BigIntegerField(help_text="Last year's revenue in won; decides bonus tiers.")
    settlement_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    token_account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="merchant")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    onboarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(annual_revenue__gte=0), name="merchant_revenue_not_negative")]
        permissions = [("freeze_merchant", "Can freeze a merchant and request its unfreeze")]

    def __str__(self):
        return f"{self.name} ({self.business_registration_number})"


class MerchantMember(models.Model):
    """A login that acts for a merchant: its owner or a clerk at the till.

    One merchant per login for now (a OneToOne on the user); a chain owner with
    several shops would relax this to a foreign key. The merchant portal decides
    what each role may do; the wallet API lets both take payments and refund.
    """

    class Role(models.TextChoices):
        OWNER = "owner", _("owner")
        CLERK = "clerk", _("clerk")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="merchant_membership")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="members")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.CLERK)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.user} ({self.role} of {self.merchant})"


class VoucherProgram(models.Model):
    """Purpose-bound money: who pays for it, how much one person may get, where it may be spent, and until when."""

    class Kind(models.TextChoices):
        TOPUP_BONUS = "topup_bonus", _("bonus on top-up")
        CASHBACK = "cashback", _("cashback on payment")
        GRANT = "grant", _("fixed grant")
        REWARD = "reward", _("reward")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        PENDING_APPROVAL = "pending_approval", _("pending approval")
        ACTIVE = "active", _("active")
        CLOSED = "closed", _("closed")

    BONUS_KINDS = (Kind.TOPUP_BONUS, Kind.CASHBACK)  # computed from a dated rule, never issued by hand
    ISSUED_KINDS = (Kind.GRANT, Kind.REWARD)  # issued by staff or another app through issue_voucher

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    funder_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", help_text="KRW budget account that backs every issue."
    )
    face_value = models.BigIntegerField(null=True, blank=True, help_text="Default amount of one grant or reward.")
    per_person_monthly_cap = models.BigIntegerField(
        null=True, blank=True, help_text="Benefit won per person per month."
    )
    per_person_total_cap = models.BigIntegerField(null=True, blank=True, help_text="Benefit won per person, ever.")
    budget = models.BigIntegerField(help_text="Total benefit won this program may ever issue.")
    issued_total = models.BigIntegerField(default=0, help_text="Benefit won issued so far, kept under the row lock.")
    expires_on = models.DateField(null=True, blank=True, help_text="Fixed expiry date of every lot issued.")
    valid_days = models.PositiveIntegerField(null=True, blank=True, help_text="Or: lots expire N days after issue.")
    eligible_categories = models.JSONField(default=list, blank=True, help_text="Empty: every category.")
    excluded_categories = models.JSONField(default=default_excluded_categories, blank=True)
    eligible_districts = models.JSONField(default=list, blank=True, help_text="Empty: all of Busan.")
    max_merchant_annual_revenue = models.BigIntegerField(null=True, blank=True)
    is_transferable = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    editors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", blank=True, help_text="Everyone who made or changed it."
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(expires_on__isnull=False) & Q(valid_days__isnull=True))
                | (Q(expires_on__isnull=True) & Q(valid_days__isnull=False)),
                name="program_one_expiry_rule",
            ),
            models.CheckConstraint(
                condition=Q(issued_total__gte=0) & Q(issued_total__lte=models.F("budget")),
                name="program_within_budget",
            ),
        ]
        permissions = [
            ("submit_voucherprogram", "Can submit a voucher program for approval"),
            ("approve_voucherprogram", "Can approve a voucher program made by someone else"),
            ("close_voucherprogram", "Can close a voucher program"),
            ("issue_voucher", "Can issue grants and rewards by hand"),
        ]

    def __str__(self):
        return self.name

    def lot_expiry(self, issued_on: date) -> date:
        return self.expires_on if self.expires_on else issued_on + timedelta(days=self.valid_days)

    def is_eligible_at(self, merchant: Merchant) -> bool:
        if merchant.category in self.excluded_categories:
            return False
        if self.eligible_categories and merchant.category not in self.eligible_categories:
            return False
        if self.eligible_districts and merchant.district not in self.eligible_districts:
            return False
        ceiling = self.max_merchant_annual_revenue
        return ceiling is None or merchant.annual_revenue <= ceiling

    @property
    def budget_left(self) -> int:
        return self.budget - self.issued_total


class ProgramRule(models.Model):
    """A bonus program's rates from `effective_from` on, until the next rule.

    A change is a new row with a later date, never an edit, so a past month's
    benefits can always be re-derived from the rule that applied then.
    """

    program = models.ForeignKey(VoucherProgram, on_delete=models.PROTECT, related_name="rules")
    effective_from = models.DateField()
    rate_bp = models.PositiveIntegerField(default=0, help_text="Top-up bonus rate, basis points (1000 = 10%).")
    monthly_base_limit = models.BigIntegerField(
        null=True, blank=True, help_text="Won of top-up (or spending) a month that earns a bonus."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["program", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["program", "effective_from"], name="one_rule_per_program_and_day")
        ]

    def __str__(self):
        return f"{self.program} from {self.effective_from}"

    def rate_for(self, merchant: Merchant | None) -> int:
        """The rate in basis points: by the merchant's revenue tier when the rule has tiers."""
        tiers = list(self.tiers.all())
        if merchant is None or not tiers:
            return self.rate_bp
        for tier in sorted(tiers, key=lambda t: (t.max_annual_revenue is None, t.max_annual_revenue or 0)):
            if tier.max_annual_revenue is None or merchant.annual_revenue <= tier.max_annual_revenue:
                return tier.rate_bp
        return 0  # above the last ceiling: payment allowed, no bonus


class RuleTier(models.Model):
    """One revenue band of a rule: merchants with annual revenue up to the ceiling earn `rate_bp`."""

    rule = models.ForeignKey(ProgramRule, on_delete=models.CASCADE, related_name="tiers")
    max_annual_revenue = models.BigIntegerField(null=True, blank=True, help_text="Empty: no ceiling.")
    rate_bp = models.PositiveIntegerField()

    class Meta:
        ordering = ["rule", "max_annual_revenue"]

    def __str__(self):
        ceiling = "no ceiling" if self.max_annual_revenue is None else f"<= {self.max_annual_revenue:,}"
        return f"{self.rate_bp / 100:g}% ({ceiling})"


class WalletLimitRule(models.Model):
    """Holding and spending limits from `effective_from` on (a new row for a change, never an edit)."""

    effective_from = models.DateField(unique=True)
    named_max_balance = models.BigIntegerField()
    anonymous_max_balance = models.BigIntegerField()
    per_payment_limit = models.BigIntegerField()
    daily_payment_limit = models.BigIntegerField()
    redeem_min_used_percent = models.PositiveSmallIntegerField(help_text="Share of paid-in money used before cash-out.")
    plain_lot_valid_days = models.PositiveIntegerField(help_text="Validity of paid-in tokens.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-effective_from"]

    def __str__(self):
        return f"wallet limits from {self.effective_from}"


class Lot(models.Model):
    """Tokens of one wallet that share a program (or none: paid-in) and an expiry date.

    Each lot is its own BKRW ledger account, so its balance is the ledger's.
    `funder_account` is where its KRW goes back when it expires: the program's
    budget, or for paid-in tokens the owner's own deposit account.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        EXPIRED = "expired", _("expired (swept)")

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="lots")
    program = models.ForeignKey(VoucherProgram, on_delete=models.PROTECT, null=True, blank=True, related_name="lots")
    expires_on = models.DateField(help_text="Spendable through this day, Asia/Seoul.")
    account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="lot")
    funder_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    expired_at = models.DateTimeField(null=True, blank=True)
    expired_amount = models.BigIntegerField(default=0)
    expiry_entry = models.OneToOneField(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="expired_lot"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["wallet", "program", "expires_on"],
                condition=Q(status="active", program__isnull=False),
                name="one_active_program_lot_per_expiry",
            ),
            models.UniqueConstraint(
                fields=["wallet", "expires_on"],
                condition=Q(status="active", program__isnull=True),
                name="one_active_plain_lot_per_expiry",
            ),
        ]
        indexes = [models.Index(fields=["expires_on"], condition=Q(status="active"), name="lot_active_expiry")]

    def __str__(self):
        return f"lot #{self.pk} {self.program or 'paid-in'} until {self.expires_on}"

    @property
    def balance(self) -> int:
        return self.account.balance  # credit-normal: the posted balance is what the holder has

    @property
    def is_paid_in(self) -> bool:
        return self.program_id is None

    def is_expired_on(self, day: date) -> bool:
        return self.status == self.Status.EXPIRED or self.expires_on < day


class TopUp(models.Model):
    """KRW from the owner's deposit into the reserve, the same BKRW minted into a paid-in lot."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="topups")
    amount = models.BigIntegerField()
    bonus_amount = models.BigIntegerField(default=0)
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="topup")
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "idempotency_key"], name="one_topup_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="topup_amount_positive"),
        ]

    def __str__(self):
        return f"top-up #{self.pk} {self.amount:,} won"


class Payment(models.Model):
    """A citizen's payment at a merchant: one ledger entry debiting one or more lots."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="payments")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments")
    amount = models.BigIntegerField()
    refunded_amount = models.BigIntegerField(default=0)
    reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=64)
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="payment")
    cashback_amount = models.BigIntegerField(default=0)
    cashback_lot = models.ForeignKey(Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    cashback_clawed_back = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "idempotency_key"], name="one_payment_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="payment_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["wallet", "created_at"], name="payment_wallet_day"),
            # Settlement reads a merchant's payments from its last settled id on,
            # from the index alone (amount and time included).
            models.Index(fields=["merchant", "id"], include=["amount", "created_at"], name="payment_merchant_id_sums"),
            # The portal's dashboard and payment list: a merchant's payments by time,
            # with the amount in the index so the 30-day chart reads the index only.
            models.Index(fields=["merchant", "created_at"], include=["amount"], name="payment_merchant_time"),
        ]

    def __str__(self):
        return f"payment #{self.pk} {self.amount:,} won"

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded_amount


class PaymentLot(models.Model):
    """How much of a payment came from one lot, read back from the entry's postings."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="lots")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    refunded_amount = models.BigIntegerField(default=0)
    spend_order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["payment", "spend_order"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "lot"], name="one_row_per_payment_lot"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="payment_lot_refund_within_amount",
            ),
        ]

    def __str__(self):
        return f"{self.amount:,} won from lot #{self.lot_id}"


class Refund(models.Model):
    """A whole or partial refund of a payment, back to the lots it came from."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    to_funder_amount = models.BigIntegerField(default=0, help_text="Part that went back to funders (expired lots).")
    cashback_clawed_back = models.BigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64)
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="refund")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["payment", "idempotency_key"], name="one_refund_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        # The portal's "refunds today": the day's refunds, then their payments' merchant.
        indexes = [models.Index(fields=["created_at"], name="refund_time")]

    def __str__(self):
        return f"refund #{self.pk} {self.amount:,} won of payment #{self.payment_id}"


class Benefit(models.Model):
    """One benefit issued under a program: a bonus, a cashback, a grant or a reward.

    `base_amount` is the top-up or spending that earned it (zero for grants);
    monthly caps are sums over these rows under the program's row lock.
    `basis` says on what ground it was issued, and `issued_by` who decided it
    when a person did: the staff member who minted it by hand, or the reviewer
    whose decision (an accepted report, a checked visit) earned the reward.
    """

    class Basis(models.TextChoices):
        EARNED = "earned", _("earned by a top-up or payment")
        PROGRAM_ISSUE = "program_issue", _("issued by the program, no person deciding")
        STAFF_GRANT = "staff_grant", _("minted by staff")
        REVIEWED_REWARD = "reviewed_reward", _("reward on a reviewer's decision")

    DECIDED_BY_A_PERSON = (Basis.STAFF_GRANT, Basis.REVIEWED_REWARD)

    program = models.ForeignKey(VoucherProgram, on_delete=models.PROTECT, related_name="benefits")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="benefits")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    base_amount = models.BigIntegerField(default=0)
    month = models.DateField(help_text="First day of the Asia/Seoul month it counts against.")
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="benefits")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=64, blank=True, default="", help_text="Set for grants and rewards.")
    basis = models.CharField(max_length=20, choices=Basis.choices, default=Basis.EARNED)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who minted it, or the reviewer whose decision earned it (see basis).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["program", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_issue_per_program_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="benefit_amount_positive"),
            # A person's decision names the person; no one else is named.
            models.CheckConstraint(
                condition=Q(basis__in=["staff_grant", "reviewed_reward"], issued_by__isnull=False)
                | (~Q(basis__in=["staff_grant", "reviewed_reward"]) & Q(issued_by__isnull=True)),
                name="benefit_issued_by_matches_basis",
            ),
        ]
        indexes = [models.Index(fields=["program", "wallet", "month"], name="benefit_person_month")]

    def __str__(self):
        return f"{self.program}: {self.amount:,} won"


class Transfer(models.Model):
    """Person to person, transferable lots only; each lot keeps its program and expiry at the receiver."""

    from_wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="transfers_out")
    to_wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="transfers_in")
    amount = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=64, blank=True, default="")
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="transfer")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["from_wallet", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_transfer_per_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
        ]

    def __str__(self):
        return f"transfer #{self.pk} {self.amount:,} won"


class MerchantPayment(models.Model):
    """A merchant paying another (a supplier) with the BKRW it holds, instead of settling it."""

    payer = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments_out")
    payee = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments_in")
    amount = models.BigIntegerField()
    reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=64)
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="merchant_payment")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["payer", "idempotency_key"], name="one_merchant_payment_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="merchant_payment_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["payee", "id"], name="merchant_payment_payee_id"),
            models.Index(fields=["payer", "id"], name="merchant_payment_payer_id"),
        ]

    def __str__(self):
        return f"merchant payment #{self.pk} {self.amount:,} won"


class Redemption(models.Model):
    """Cash-out of a wallet's unused paid-in tokens: BKRW burned, KRW back to the deposit account."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="redemptions")
    amount = models.BigIntegerField()
    paid_in = models.BigIntegerField(help_text="Paid-in total the used share was measured against.")
    idempotency_key = models.CharField(max_length=64)
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="redemption")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "idempotency_key"], name="one_redemption_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="redemption_amount_positive"),
        ]

    def __str__(self):
        return f"redemption #{self.pk} {self.amount:,} won"


class PaymentRequest(models.Model):
    """A merchant-presented QR payment request: amount, reference and expiry,
    signed by one of the merchant's device keys (voucher.payment_codes has the
    signed message and the payload format). Paid once, by whoever scans it first."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        PAID = "paid", _("paid")
        CANCELLED = "cancelled", _("cancelled")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payment_requests")
    device = models.ForeignKey(DeviceKey, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    reference = models.CharField(max_length=100, blank=True)
    nonce = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    signature = models.CharField(max_length=130, help_text="Hex of the merchant device's recoverable signature.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="payment_request"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "nonce"], name="one_payment_request_per_nonce"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_request_amount_positive"),
        ]

    def __str__(self):
        return f"payment request #{self.pk} {self.amount:,} won"


class SettlementBatch(models.Model):
    """One settlement run: the daily batch of a Seoul business day (started by beat or
    by staff, one per day), or one merchant's instant settlement.

    A batch is resumable: each merchant's line is written in the transaction that
    pays it, so `status` stays running until every merchant has a line, and running
    the batch again finishes it. The totals are sums over the lines so far.
    """

    class Kind(models.TextChoices):
        DAILY = "daily", _("daily")
        INSTANT = "instant", _("instant")
        STAFF = "staff", _("by staff")

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")

    period = models.DateField(help_text="The Asia/Seoul business day settled; for instant ones the day asked.")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    cutoff = models.DateTimeField(help_text="Payments received before this instant are settled.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(
        max_length=100, blank=True, default="", help_text="Instant settlement: merchant id and the caller's key."
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    merchant_count = models.PositiveIntegerField(default=0)
    paid_count = models.PositiveIntegerField(default=0)
    held_count = models.PositiveIntegerField(default=0)
    payment_count = models.PositiveIntegerField(default=0)
    gross = models.BigIntegerField(default=0)
    refunds = models.BigIntegerField(default=0)
    fees = models.BigIntegerField(default=0)
    net = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-period", "-pk"]
        permissions = [("run_settlement", "Can run or resume a settlement batch")]
        constraints = [
            # The daily batch and a staff run of the same day are one batch: a second
            # run resumes it instead of starting another.
            models.UniqueConstraint(fields=["period"], condition=~Q(kind="instant"), name="one_daily_batch_per_day"),
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=~Q(idempotency_key=""), name="one_settlement_per_key"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} settlement {self.period} #{self.pk}"


class SettlementLine(models.Model):
    """What one merchant was paid in one batch, or why it was held back.

    A paid line covers, for its merchant, the rows with ids in (after, through] of
    four kinds: payments to it, refunds it gave, BKRW other merchants paid it and
    BKRW it paid them. Its `sequence` is the merchant's n-th paid line, and line n
    starts exactly where line n-1 ended, so a merchant's paid ranges never overlap
    and never leave a gap: every row is settled once (see voucher.services.settlement
    for why an id range is exact). A held line records what it would have covered
    but has no sequence and covers nothing; the next paid line starts from the same place.

    burned = gross + from_merchants - refunds - to_merchants (the BKRW destroyed),
    fee = burned x the merchant's tier rate, rounded down; net = burned - fee (KRW paid).
    """

    class Status(models.TextChoices):
        PAID = "paid", _("paid")
        HELD = "held", _("held back")

    # No index of their own: the unique (batch, merchant) and (merchant, sequence) lead with them.
    # The three references are checked once per INSERT by a trigger, not per row (migration 0010).
    batch = models.ForeignKey(
        SettlementBatch, on_delete=models.PROTECT, related_name="lines", db_index=False, db_constraint=False
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="settlement_lines", db_index=False, db_constraint=False
    )
    period = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices)
    held_reason = models.CharField(max_length=40, blank=True, default="")
    sequence = models.PositiveIntegerField(null=True, blank=True, help_text="The merchant's n-th paid line.")
    payment_count = models.PositiveIntegerField(default=0)
    gross = models.BigIntegerField(default=0, help_text="Customer payments received.")
    refunds = models.BigIntegerField(default=0, help_text="Refunds given back to customers.")
    from_merchants = models.BigIntegerField(default=0, help_text="BKRW received from other merchants.")
    to_merchants = models.BigIntegerField(default=0, help_text="BKRW paid to other merchants (suppliers).")
    fee_rate_bp = models.PositiveIntegerField(default=0, help_text="Basis points (30 = 0.3%).")
    fee = models.BigIntegerField(default=0)
    net = models.BigIntegerField(default=0, help_text="KRW paid to the settlement account.")
    payments_after = models.BigIntegerField(default=0)
    payments_through = models.BigIntegerField(default=0)
    refunds_after = models.BigIntegerField(default=0)
    refunds_through = models.BigIntegerField(default=0)
    from_merchants_after = models.BigIntegerField(default=0)
    from_merchants_through = models.BigIntegerField(default=0)
    to_merchants_after = models.BigIntegerField(default=0)
    to_merchants_through = models.BigIntegerField(default=0)
    # Shared by the lines of a group of merchants settled together (see voucher.services.settlement).
    # Not indexed: entries are never deleted, and lines are looked up by batch or merchant.
    entry = models.ForeignKey(
        JournalEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="settlement_lines",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["batch", "merchant"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "merchant"], name="one_line_per_merchant_and_batch"),
            # Two settlements of one merchant can never both claim the same next range.
            models.UniqueConstraint(fields=["merchant", "sequence"], name="one_paid_line_per_sequence"),
            models.CheckConstraint(
                condition=Q(status="paid", sequence__isnull=False) | Q(status="held", sequence__isnull=True),
                name="paid_lines_have_a_sequence",
            ),
            models.CheckConstraint(condition=Q(fee__gte=0) & Q(net__gte=0), name="settlement_line_not_negative"),
            models.CheckConstraint(
                condition=Q(payments_through__gte=models.F("payments_after"))
                & Q(refunds_through__gte=models.F("refunds_after"))
                & Q(from_merchants_through__gte=models.F("from_merchants_after"))
                & Q(to_merchants_through__gte=models.F("to_merchants_after")),
                name="settlement_ranges_ordered",
            ),
        ]
        # No index of its own on (merchant, period): a merchant's lines are found
        # through one_paid_line_per_sequence's (merchant, sequence) and sorted (a few
        # hundred a year); every index is paid for on each line a batch writes.

    def __str__(self):
        return f"settlement of {self.merchant} for {self.period}: {self.net:,} won"

    @property
    def burned(self) -> int:
        return self.net + self.fee


# --- back office: customer view, reconciliation, fraud flags (issue 6) ---------------------


class CustomerWallet(Wallet):
    """A citizen as the bank's staff see them: wallet, lots, limits, history, devices, KYC tier."""

    class Meta:
        proxy = True
        verbose_name = "customer"
        permissions = [
            ("change_kyc_tier", "Can change a customer's KYC tier"),
            ("revoke_device_key", "Can revoke a customer's device key"),
        ]


class Reconciliation(VoucherProgram):
    """The reconciliation dashboard's entry in the admin (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "reconciliation"
        verbose_name_plural = "reconciliation"


class FraudFlag(models.Model):
    """A voucher cashing-out ("kkang") pattern the nightly rules found, for staff to review.

    One flag per rule, subject and period, so running the rules again adds nothing.
    Only voucher.services.fraud writes these rows.
    """

    class Rule(models.TextChoices):
        ROUND_SUM_PAYMENTS = "round_sum_payments", _("repeated round-sum payments to one merchant")
        QUICK_FULL_REFUNDS = "quick_full_refunds", _("payments refunded in full soon after, again and again")
        TAKINGS_ABOVE_REVENUE = "takings_above_revenue", _("voucher takings far above the revenue tier")
        SHARED_DEVICE_KEY = "shared_device_key", _("one device key on many wallets")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DISMISSED = "dismissed", _("dismissed")
        ACTIONED = "actioned", _("actioned (frozen)")

    rule = models.CharField(max_length=24, choices=Rule.choices)
    subject = models.CharField(max_length=120, help_text="What was flagged, e.g. wallet:12/merchant:3.")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="fraud_flags")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="fraud_flags")
    device_public_key = models.CharField(max_length=66, blank=True, default="")
    period_start = models.DateField()
    period_end = models.DateField(help_text="The last Seoul day the rule looked at.")
    evidence = models.JSONField(default=dict)
    score = models.PositiveIntegerField(default=0, help_text="How far over the threshold; higher first.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "-score", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "subject", "period_end"], name="one_flag_per_rule_subject_period")
        ]
        permissions = [("review_fraudflag", "Can review a fraud flag (dismiss or freeze)")]

    def __str__(self):
        return f"{self.get_rule_display()}: {self.subject} ({self.period_start}..{self.period_end})"


class WalletHold(models.Model):
    """An amount reserved on a wallet for one merchant (a tour pass bought before
    its first use), later captured whole or in part as a Payment, voided, or
    expired. The reservation is one bank Hold per lot (WalletHoldLot), so the
    lots' available balances drop at once; only voucher.services.wallet_holds
    writes these rows."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        CAPTURED = "captured", _("captured")
        VOIDED = "voided", _("voided")
        EXPIRED = "expired", _("expired")

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="wallet_holds")
    amount = models.BigIntegerField()
    captured_amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=64)
    capture_key = models.CharField(max_length=64, blank=True, default="")
    # Names the capture's Payment (idempotency key "hold:<uid>"): unguessable
    # before the capture, so no pay() of the wallet's owner can take that key first.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="wallet_hold")
    authorized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "idempotency_key"], name="one_wallet_hold_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="wallet_hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(captured_amount__gte=0) & Q(captured_amount__lte=models.F("amount")),
                name="wallet_hold_capture_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="open"), name="wallet_hold_open_expiry"),
            models.Index(fields=["wallet", "created_at"], name="wallet_hold_wallet_time"),
        ]

    def __str__(self):
        return f"wallet hold #{self.pk} {self.amount:,} won ({self.status})"


class WalletHoldLot(models.Model):
    """What a wallet hold reserved on one lot: the bank Hold on the lot's account."""

    hold = models.ForeignKey(WalletHold, on_delete=models.PROTECT, related_name="lots")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    bank_hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="wallet_hold_lot")
    amount = models.BigIntegerField()
    spend_order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["hold", "spend_order"]
        constraints = [
            models.UniqueConstraint(fields=["hold", "lot"], name="one_row_per_wallet_hold_lot"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="wallet_hold_lot_amount_positive"),
        ]

    def __str__(self):
        return f"{self.amount:,} won held on lot #{self.lot_id}"

"""The token's part of the Busan demo: five voucher programs, merchants across
Busan, citizens with deposits, top-ups, grants and a few payments, and the
logins (with API tokens) of the citizens and of every merchant's owner.

Idempotent: programs, merchants and people are found by stable codes before
they are made, and every money movement carries a stable idempotency key, so
a second run changes nothing. Needs no validator keys (sealing is the
caller's business).
"""

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model

from bank.models import Account, Party
from bank.roles import grant_role
from bank.services import issue_api_token, issue_enrollment_code, open_account, open_party, post_entry
from voucher import services
from voucher.clock import SEOUL, seoul_today
from voucher.models import Merchant, MerchantMember, Payment, VoucherProgram, Wallet
from voucher.services.merchants import brn_check_digit

STAFF = ("demo-maker", "demo-checker", "demo-officer")
LARGE_STORES = ["department_store", "large_mart", "franchise_direct", "gambling", "adult_entertainment"]
TIERS_2023_07 = [(1_000_000_000, 700), (3_000_000_000, 500)]  # 7% / 5% / none above
TIERS_2026 = [(1_000_000_000, 1000), (3_000_000_000, 800)]  # 10% / 8% / none above

PROGRAMS = [
    {
        "code": "busan-cashback",
        "name": "Busan local-currency cashback",
        "kind": VoucherProgram.Kind.CASHBACK,
        "budget": 50_000_000,
        "per_person_monthly_cap": 50_000,
        "valid_days": 5 * 365,
        "excluded_categories": LARGE_STORES,
        "rules": [
            {"effective_from": date(2023, 7, 1), "monthly_base_limit": 500_000, "tiers": TIERS_2023_07},
            {"effective_from": date(2026, 1, 1), "monthly_base_limit": 500_000, "tiers": TIERS_2026},
        ],
    },
    {
        "code": "disaster-relief-2026",
        "name": "Disaster relief grant 2026",
        "kind": VoucherProgram.Kind.GRANT,
        "budget": 300_000 * 20,
        "face_value": 300_000,
        "per_person_total_cap": 300_000,
        "valid_days": 90,
        "excluded_categories": LARGE_STORES,
        "is_transferable": False,
    },
    {
        "code": "family-love-card",
        "name": "Family-love card discount",
        "kind": VoucherProgram.Kind.GRANT,
        "budget": 10_000_000,
        "face_value": 30_000,
        "per_person_monthly_cap": 30_000,
        "valid_days": 30,
        "eligible_categories": ["restaurant", "cafe", "grocery", "bookstore", "attraction", "pharmacy", "fish_market"],
        "excluded_categories": LARGE_STORES,
    },
    {
        "code": "safety-report-rewards",
        "name": "Public-safety video report rewards",
        "kind": VoucherProgram.Kind.REWARD,
        "budget": 20_000_000,
        "face_value": 5_000,
        "per_person_monthly_cap": 50_000,
        "valid_days": 5 * 365,
        "excluded_categories": LARGE_STORES,
    },
    {
        "code": "tour-promotion",
        "name": "Smart tour promotion",
        "kind": VoucherProgram.Kind.GRANT,
        "budget": 5_000_000,
        "face_value": 10_000,
        "per_person_total_cap": 10_000,
        "expires_on": date(2027, 12, 31),
        "eligible_categories": ["attraction", "tour_operator", "lodging", "restaurant", "cafe"],
        "eligible_districts": ["haeundae", "jung", "yeongdo", "suyeong", "saha"],
        "excluded_categories": LARGE_STORES,
        "is_transferable": True,
    },
]

# (short name, display name, category, district, annual revenue in won)
MERCHANTS = [
    ("milmyeon", "Haeundae Milmyeon House", "restaurant", "haeundae", 450_000_000),
    ("ocean-cafe", "Gwangalli Ocean Cafe", "cafe", "suyeong", 800_000_000),
    ("jagalchi-27", "Jagalchi Fresh Fish 27", "fish_market", "jung", 600_000_000),
    ("bupyeong-grocery", "Bupyeong Market Grocery", "grocery", "jung", 1_800_000_000),
    ("seomyeon-books", "Seomyeon Book Corner", "bookstore", "busanjin", 350_000_000),
    ("taejongdae", "Taejongdae Observatory", "attraction", "yeongdo", 2_600_000_000),
    ("gamcheon-shop", "Gamcheon Culture Village Shop", "retail", "saha", 120_000_000),
    ("dadaepo-grill", "Dadaepo Sunset Grill", "restaurant", "saha", 950_000_000),
    ("huinnyeoul-cafe", "Huinnyeoul Cliff Cafe", "cafe", "yeongdo", 200_000_000),
    ("millak-raw-fish", "Millak Raw Fish Town", "restaurant", "suyeong", 4_200_000_000),
    ("seomyeon-dept", "Seomyeon Department Store", "department_store", "busanjin", 800_000_000_000),
    ("sea-tour-pass", "Busan Sea Tour Pass", "tour_operator", "haeundae", 1_200_000_000),
    ("gamcheon-wholesale", "Gamcheon Port Fish Wholesale", "wholesale", "saha", 2_900_000_000),
]

CITIZENS = 20
# Demo logins for the wallet API (reads need only the token; money-moving
# requests also need a device key the app enrolls with POST /api/v1/devices/,
# the first one with an enrollment code a teller issues: the demo prints one).
CITIZEN_PASSWORD = "busan-citizen-2026"
MERCHANT_PASSWORD = "busan-merchant-2026"
ANONYMOUS = {17, 18, 19}
# (citizen, merchant, amount): spends paid-in tokens, grants and tour vouchers where each is eligible.
PAYMENTS = [
    (0, "milmyeon", 12_000),
    (0, "jagalchi-27", 85_000),
    (1, "ocean-cafe", 6_500),
    (1, "bupyeong-grocery", 54_000),
    (2, "seomyeon-books", 23_000),
    (2, "jagalchi-27", 120_000),
    (3, "taejongdae", 5_000),
    (4, "dadaepo-grill", 48_000),
    (5, "gamcheon-shop", 15_000),
    (6, "millak-raw-fish", 96_000),
    (7, "seomyeon-dept", 150_000),
    (8, "huinnyeoul-cafe", 9_000),
    (9, "milmyeon", 18_000),
    (10, "bupyeong-grocery", 41_000),
    (11, "ocean-cafe", 7_500),
    (12, "sea-tour-pass", 39_000),
    (13, "jagalchi-27", 64_000),
    (16, "taejongdae", 10_000),
    (17, "huinnyeoul-cafe", 8_000),
    (18, "milmyeon", 10_000),
]


def load_voucher_demo(stdout) -> None:
    maker, checker, officer = _staff()
    bank = open_party(kind=Party.Kind.BANK, external_ref="consortium:bank", display_name="Busan Bank")
    city = open_party(kind=Party.Kind.CITY, external_ref="consortium:city", display_name="Busan Metropolitan City")
    # Cash paid in at the bank's counters: the demo's only source of KRW.
    cash = open_account(
        owner=bank, code="demo:bank:cash:KRW", currency="KRW", normal_side="asset", may_go_negative=True
    )

    programs = {spec["code"]: _program(spec, city, cash, maker, checker) for spec in PROGRAMS}
    stdout.write(f"  voucher programs: {len(programs)} active ({', '.join(programs)})")
    merchants = {short: _merchant(index, short, spec, officer) for index, (short, *spec) in enumerate(MERCHANTS)}
    stdout.write(f"  merchants: {len(merchants)} in {len({m.district for m in merchants.values()})} districts")
    wallets = [_citizen(index, cash) for index in range(CITIZENS)]
    stdout.write(f"  citizens: {len(wallets)} wallets with KRW deposits")

    for index, wallet in enumerate(wallets[:16]):
        services.top_up(wallet=wallet, amount=200_000 + (index % 4) * 100_000, idempotency_key=f"demo:topup:{index}")
    _issue(programs["disaster-relief-2026"], wallets[:10], "relief")
    _issue(programs["family-love-card"], wallets[10:15], "family")
    _issue(programs["safety-report-rewards"], [wallets[3], wallets[7], wallets[11]], "safety")
    _issue(programs["tour-promotion"], wallets[15:], "tour")

    payments = [
        services.pay(
            wallet=wallets[citizen],
            merchant=merchants[short],
            amount=amount,
            idempotency_key=f"demo:pay:{number}",
            reference=f"demo-{number:03d}",
        )
        for number, (citizen, short, amount) in enumerate(PAYMENTS)
    ]
    services.refund_payment(payment=payments[5], amount=20_000, idempotency_key="demo:refund:0")
    services.pay_merchant(
        payer=merchants["jagalchi-27"],
        payee=merchants["gamcheon-wholesale"],
        amount=150_000,
        idempotency_key="demo:b2b:0",
        reference="morning catch",
    )
    cashback = sum(p.cashback_amount for p in Payment.objects.filter(idempotency_key__startswith="demo:pay:"))
    stdout.write(f"  payments: {len(payments)} (cashback {cashback:,} won), 1 refund, 1 merchant-to-merchant")
    _settle(merchants, wallets, officer, stdout)
    # After the settlements, so the portal's dashboard has sales and a next-settlement estimate.
    made = _sales_history(wallets[:16], list(merchants.values()))
    stdout.write(f"  portal sales: {made} new payments over the last {HISTORY_DAYS} days and today")

    citizen_token = _token(wallets[0].user)
    stdout.write(
        f"  citizen login: {wallets[0].user.username} / {CITIZEN_PASSWORD} (API token {citizen_token}); "
        f"citizen01 to citizen{CITIZENS:02d} share the password"
    )
    first = merchants[MERCHANTS[0][0]]
    owner = first.members.get(role=MerchantMember.Role.OWNER).user
    stdout.write(
        f"  merchant login: {owner.username} / {MERCHANT_PASSWORD} ({first.name}, owner; API token {_token(owner)}); "
        f"every merchant has <short name>-owner, {MERCHANTS[0][0]} also {MERCHANTS[0][0]}-clerk"
    )
    citizen_code, merchant_code = _enrollment_codes(wallets[0], first)
    stdout.write(
        f"  device enrollment codes (one-time, {settings.DEVICE_ENROLLMENT_CODE_HOURS} h, issued by the teller): "
        f"{wallets[0].user.username} {citizen_code}, {owner.username} {merchant_code} (docs/SIGNING.md)"
    )
    stdout.write(
        f"  merchant portal: http://127.0.0.1:8000/portal/ as {MERCHANTS[0][0]}-owner (owner) or "
        f"{MERCHANTS[0][0]}-clerk (clerk), password {MERCHANT_PASSWORD}"
    )


HISTORY_DAYS = 30


def _sales_history(wallets: list[Wallet], merchants: list[Merchant]) -> int:
    """Sales for the merchant portal's dashboard: every merchant gets payments on
    about one day in three of the last 30 Seoul days, and two today.

    Keys carry the day, so a second run on the same day changes nothing and a
    run on a later day adds that day's sales. Each payment is topped up first
    by the same amount, so the citizens' balances do not run dry.
    """
    today = seoul_today()
    made, number = 0, 0
    for days_ago in range(HISTORY_DAYS - 1, -1, -1):
        day = today - timedelta(days=days_ago)
        for index, merchant in enumerate(merchants):
            count = 2 if days_ago == 0 else (1 if (days_ago + index) % 3 == 0 else 0)
            for n in range(count):
                number += 1
                wallet = wallets[number % len(wallets)]
                key = f"demo:sales:{day.isoformat()}:{index}:{n}"
                if Payment.objects.filter(wallet=wallet, idempotency_key=key).exists():
                    continue
                amount = 3_000 + ((index * 7 + days_ago * 13 + n * 5) % 20) * 1_000
                services.top_up(wallet=wallet, amount=amount, idempotency_key=f"{key}:topup")
                payment = services.pay(
                    wallet=wallet, merchant=merchant, amount=amount, idempotency_key=key, reference=f"table-{n + 1}"
                )
                if days_ago:
                    # Demo data only: the payment is made now, through the service, and its
                    # record is dated back to the day it stands for, so the 30-day chart has
                    # history. Its ledger entry keeps the real time; amounts are untouched.
                    at = datetime.combine(day, time(11, 0), tzinfo=SEOUL) + timedelta(minutes=37 * index + 11 * n)
                    Payment.objects.filter(pk=payment.pk).update(created_at=at)
                made += 1
    return made


def _staff():
    User = get_user_model()
    users = []
    for username in STAFF:
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created:
            user.set_unusable_password()  # maker and checker are demo actors; staff log in as the bank demo's admin
            user.save(update_fields=["password"])
        users.append(user)
    return users


def _enrollment_codes(wallet: Wallet, merchant: Merchant) -> tuple[str, str]:
    """Codes for the first citizen's and merchant's first phone, issued as a teller
    would at the counter (the real service: audited, digest only, expiring); a new
    run issues new ones and voids the old."""
    teller, _ = get_user_model().objects.get_or_create(username="teller", defaults={"is_staff": True})
    teller = grant_role(teller, "teller")
    reason = "demo data: the demo login's first phone"
    return (
        issue_enrollment_code(actor=teller, party=wallet.owner, reason=reason)[1],
        issue_enrollment_code(actor=teller, party=merchant.party, reason=reason)[1],
    )


def _login(username: str, password: str):
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def _token(user) -> str:
    """A new API token, printed for the demo: only its digest is stored, so this is the one time it is known."""
    return issue_api_token(user=user).key


def _fund(account: Account, cash: Account, amount: int, key: str) -> None:
    post_entry(lines=[(cash, -amount), (account, amount)], kind="demo_cash_deposit", idempotency_key=key)


def _program(spec: dict, city: Party, cash: Account, maker, checker) -> VoucherProgram:
    spec = dict(spec)
    code, rules = spec.pop("code"), spec.pop("rules", [])
    program = VoucherProgram.objects.filter(code=code).first()
    if program is None:
        funder = open_account(owner=city, code=f"krw:city:budget:{code}", currency="KRW", normal_side="liability")
        _fund(funder, cash, spec["budget"], f"demo:budget:{code}")
        program = services.create_program(actor=maker, code=code, funder_account=funder, **spec)
    for rule in rules:
        if not program.rules.filter(effective_from=rule["effective_from"]).exists():
            services.add_program_rule(actor=maker, program=program, **rule)
    if program.status == VoucherProgram.Status.DRAFT:
        program = services.submit_program(actor=maker, program=program)
    if program.status == VoucherProgram.Status.PENDING_APPROVAL:
        program = services.approve_program(actor=checker, program=program)
    return program


def _merchant(index: int, short: str, spec: tuple, officer) -> Merchant:
    name, category, district, revenue = spec
    first_nine = f"6178{index + 1:05d}"
    number = first_nine + str(brn_check_digit(first_nine))
    merchant = Merchant.objects.filter(business_registration_number__in=[number, _dashed(number)]).first()
    if merchant is None:
        merchant = services.onboard_merchant(
            actor=officer,
            business_registration_number=number,
            name=name,
            category=category,
            district=district,
            annual_revenue=revenue,
        )
    owner = _login(f"{short}-owner", MERCHANT_PASSWORD)
    services.add_merchant_member(actor=officer, merchant=merchant, user=owner, role=MerchantMember.Role.OWNER)
    if index == 0:
        clerk = _login(f"{short}-clerk", MERCHANT_PASSWORD)
        services.add_merchant_member(actor=owner, merchant=merchant, user=clerk, role=MerchantMember.Role.CLERK)
    return merchant


def _dashed(number: str) -> str:
    return f"{number[:3]}-{number[3:5]}-{number[5:]}"


def _citizen(index: int, cash: Account) -> Wallet:
    party = open_party(kind=Party.Kind.PERSON, external_ref=f"demo:citizen:{index:02d}", display_name="")
    tier = "anonymous" if index in ANONYMOUS else "named"
    user = _login(f"citizen{index + 1:02d}", CITIZEN_PASSWORD)
    wallet = services.open_wallet(owner=party, kyc_tier=tier, user=user)
    _fund(wallet.deposit_account, cash, 1_000_000 + index * 50_000, f"demo:deposit:{index}")
    return wallet


def _issue(program: VoucherProgram, wallets: list[Wallet], label: str) -> None:
    for wallet in wallets:
        services.issue_voucher(program=program, wallet=wallet, idempotency_key=f"demo:{label}:{wallet.owner_id}")


def _settle(merchants: dict[str, Merchant], wallets: list[Wallet], officer, stdout) -> None:
    """Settle what the demo merchants took (staff-requested instant settlements, so
    the portal has statements to show), then a few sales after it, so the first
    merchant's next-settlement estimate is not empty. Stable keys: a re-run replays."""
    # The bank demo's settlement operator asks for them, as the role that may.
    operator, _ = get_user_model().objects.get_or_create(username="settlement", defaults={"is_staff": True})
    operator = grant_role(operator, "settlement_operator")
    settled = []
    for short, merchant in merchants.items():
        if merchant.payments.exists() or merchant.payments_in.exists():
            settled.append(
                services.settle_merchant_now(
                    merchant=merchant, acting_user=operator, idempotency_key=f"demo:settle:{short}"
                )
            )
    first = merchants[MERCHANTS[0][0]]
    for number, amount in enumerate((8_000, 14_500, 22_000)):
        services.pay(
            wallet=wallets[number],
            merchant=first,
            amount=amount,
            idempotency_key=f"demo:pay-after-settlement:{number}",
            reference=f"demo-after-{number}",
        )
    net = sum(line.net for line in settled)
    fees = sum(line.fee for line in settled)
    stdout.write(f"  settlements: {len(settled)} merchants paid {net:,} won (fees {fees:,} won); 3 sales since")

"""Property test: any sequence of transfers, holds, captures, voids, reversals and seals
keeps the ledger's invariants, and every accepted operation moves exactly what it says."""

from collections import defaultdict

from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bank import services
from bank.errors import BankError
from bank.models import Account, Hold, JournalEntry, Posting
from bank.verification import verify_ledger
from tests.factories import AccountFactory, bank_source, funded_account

CUSTOMERS = 4
ACCOUNTS = CUSTOMERS + 1  # the last one is the bank's funding account, which may go negative

account_index = st.integers(min_value=0, max_value=ACCOUNTS - 1)
amount = st.integers(min_value=1, max_value=6_000)
pick = st.integers(min_value=0, max_value=1_000)  # an earlier hold or entry, modulo how many there are

operations = st.lists(
    st.one_of(
        st.tuples(st.just("transfer"), account_index, account_index, amount),
        st.tuples(st.just("split"), account_index, account_index, account_index, amount, amount),
        st.tuples(st.just("hold"), account_index, account_index, amount),
        st.tuples(st.just("capture"), pick, st.none() | amount),
        st.tuples(st.just("void"), pick),
        st.tuples(st.just("reverse"), pick),
        st.tuples(st.just("seal")),
    ),
    min_size=4,
    max_size=30,
)


class Model:
    """What the balances should be, given only the operations the ledger accepted."""

    def __init__(self, accounts):
        self.accounts = accounts
        self.balance = {a.pk: a.balance for a in accounts}
        self.on_hold = {a.pk: 0 for a in accounts}
        self.holds: list[Hold] = []
        self.entries: list[JournalEntry] = []

    def run(self, op) -> None:
        name, *args = op
        try:
            getattr(self, name)(*args)
        except BankError:
            pass  # a refusal is a fine outcome; the checks below prove it wrote nothing

    def post(self, lines):
        entry = services.post_entry(lines=lines, kind="transfer")
        self.apply(lines)
        self.entries.append(entry)

    def apply(self, lines):
        for account_id, delta in lines:
            self.balance[account_id] += delta

    def transfer(self, source, target, value):
        a, b = self.accounts[source].pk, self.accounts[target].pk
        self.post([(a, -value), (b, value)])

    def split(self, source, first, second, value_one, value_two):
        a, b, c = (self.accounts[i].pk for i in (source, first, second))
        self.post([(a, -(value_one + value_two)), (b, value_one), (c, value_two)])

    def hold(self, source, target, value):
        placed = services.place_hold(
            account=self.accounts[source], destination=self.accounts[target], amount=value, kind="card_auth"
        )
        self.on_hold[placed.account_id] += value
        self.holds.append(placed)

    def capture(self, which, value):
        if not self.holds:
            return
        held = self.holds[which % len(self.holds)]
        entry = services.capture_hold(hold=held, amount=value)
        captured = held.amount if value is None else value
        self.on_hold[held.account_id] -= held.amount
        self.apply([(held.account_id, -captured), (held.destination_id, captured)])
        self.entries.append(entry)

    def void(self, which):
        if not self.holds:
            return
        held = self.holds[which % len(self.holds)]
        services.void_hold(hold=held)
        self.on_hold[held.account_id] -= held.amount

    def reverse(self, which):
        if not self.entries:
            return
        original = self.entries[which % len(self.entries)]
        reversal = services.reverse_entry(entry=original)
        self.apply([(p.account_id, -p.amount) for p in original.postings.all()])
        self.entries.append(reversal)

    def seal(self):
        services.seal_pending_entries()


def assert_ledger_invariants(model: Model) -> None:
    sums = defaultdict(int)
    for currency, total in Posting.objects.values_list("currency").annotate(total=Sum("amount")):
        sums[currency] += total
    assert all(total == 0 for total in sums.values()), sums

    posted = dict(Posting.objects.values_list("account").annotate(total=Sum("amount")))
    held = dict(Hold.objects.filter(status=Hold.Status.OPEN).values_list("account").annotate(total=Sum("amount")))
    for account in Account.objects.all():
        assert account.balance == posted.get(account.pk, 0), account
        assert account.on_hold == held.get(account.pk, 0), account
        if not account.may_go_negative:
            assert account.available >= 0, account
        if account.pk in model.balance:
            assert (account.balance, account.on_hold) == (model.balance[account.pk], model.on_hold[account.pk])

    report = verify_ledger()
    assert report.ok, report.failures


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=operations, opening=st.lists(st.integers(min_value=0, max_value=10_000), min_size=CUSTOMERS, max_size=CUSTOMERS)
)
def test_any_sequence_of_ledger_operations_keeps_every_invariant(validators, ops, opening):
    # each example runs in its own transaction, rolled back at the end, so examples start from an empty ledger
    with transaction.atomic():
        # given
        customers = [funded_account(value) if value else AccountFactory() for value in opening]
        model = Model([*customers, bank_source()])
        # when
        for op in ops:
            model.run(op)
        # then
        assert_ledger_invariants(model)
        transaction.set_rollback(True)

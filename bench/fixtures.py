"""What every ledger benchmark starts from: a consortium of four validators and
many funded customer accounts. Money gets into the accounts only through the
posting service, as it does in production."""

from pathlib import Path

from tqdm import tqdm

FUNDS_PER_ACCOUNT = 10**12  # won; no benchmark transfer ever runs out of money
VALIDATOR_NAMES = ["city", "bank", "security-agency", "technopark"]
KEY_DIR = Path(__file__).resolve().parent / "out" / "validator-keys"


def use_validators() -> None:
    """Register four validators with fixed keys (the same in every run, so a cached
    ledger stays verifiable) and point the sealer at their key files."""
    from django.conf import settings

    from bank import bls
    from bank.models import ValidatorKey
    from bank.services import register_validator
    from bank.services.consortium import signing_keys

    KEY_DIR.mkdir(parents=True, exist_ok=True)
    settings.LEDGER_VALIDATOR_KEY_DIR = KEY_DIR
    for index, name in enumerate(VALIDATOR_NAMES):
        secret = bls.secret_key_bytes(0xBE4C4 + index * 7919)
        (KEY_DIR / f"{name}.key").write_text(secret.hex() + "\n")
        if not ValidatorKey.objects.filter(name=name).exists():
            register_validator(
                name=name, public_key=bls.public_key(secret), proof_of_possession=bls.prove_possession(secret)
            )
    signing_keys.cache_clear()


def open_funded_accounts(count: int, *, prefix: str = "bench", progress: bool = True) -> list[int]:
    """`count` customer accounts (credit-normal, may not go negative), each credited
    FUNDS_PER_ACCOUNT from the bank's funding account by a real ledger entry.
    Returns their ids. Funding entries count as ledger entries."""
    from bank import services
    from bank.models import Account, Party

    owner = services.open_party(kind=Party.Kind.BANK, external_ref=f"{prefix}:bank")
    funding = services.open_account(
        owner=owner, code=f"{prefix}:funding", currency="KRW", normal_side="asset", may_go_negative=True
    )
    Account.objects.bulk_create(
        [
            Account(owner=owner, code=f"{prefix}:customer:{i}", currency="KRW", normal_side="liability")
            for i in range(count)
        ],
        batch_size=5000,
    )
    ids = list(
        Account.objects.filter(code__startswith=f"{prefix}:customer:").order_by("pk").values_list("pk", flat=True)
    )
    with tqdm(total=len(ids), desc="funding accounts", unit="acct", disable=not progress, leave=False) as bar:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            services.post_entries(
                requests=[
                    services.EntryRequest(
                        lines=[(funding.pk, -FUNDS_PER_ACCOUNT), (account_id, FUNDS_PER_ACCOUNT)],
                        kind="funding",
                        idempotency_key=f"{prefix}:funding:{account_id}",
                    )
                    for account_id in chunk
                ]
            )
            bar.update(len(chunk))
    return ids

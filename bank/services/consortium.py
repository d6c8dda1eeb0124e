"""The consortium's validator keys: registering public keys and loading the
secret keys this node holds. Secret keys never enter the database."""

import secrets
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import transaction

from bank import bls, errors
from bank.models import Party, ValidatorKey


def register_validator(
    *, name: str, public_key: bytes, proof_of_possession: bytes, party: Party | None = None
) -> ValidatorKey:
    """Add a validator. The proof of possession shows the registrant holds the
    secret key, which is what makes same-message aggregate verification safe."""
    if not bls.verify_possession(public_key, proof_of_possession):
        raise errors.InvalidEntry("The proof of possession does not match the public key.", validator=name)
    with transaction.atomic():
        key, _ = ValidatorKey.objects.update_or_create(
            name=name,
            defaults={
                "public_key": public_key.hex(),
                "proof_of_possession": proof_of_possession.hex(),
                "party": party,
                "is_active": True,
            },
        )
    return key


def generate_validator(*, name: str, party: Party | None = None, key_dir: Path | None = None) -> ValidatorKey:
    """Create a key pair, write the secret to <key_dir>/<name>.key and register the public key.
    An existing key file is reused, so running it again changes nothing."""
    key_dir = Path(key_dir or settings.LEDGER_VALIDATOR_KEY_DIR)
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / f"{name}.key"
    if path.exists():
        secret = bytes.fromhex(path.read_text().strip())
    else:
        secret = bls.secret_key_bytes(secrets.randbelow(bls.CURVE_ORDER - 1) + 1)
        path.write_text(secret.hex() + "\n")
        path.chmod(0o600)
    signing_keys.cache_clear()
    return register_validator(
        name=name, public_key=bls.public_key(secret), proof_of_possession=bls.prove_possession(secret), party=party
    )


@lru_cache(maxsize=1)
def signing_keys() -> tuple[tuple[int, bytes], ...]:
    """(validator id, secret key) for every active validator whose key file this node holds."""
    key_dir = Path(settings.LEDGER_VALIDATOR_KEY_DIR)
    by_public = {v.public_key: v.pk for v in ValidatorKey.objects.filter(is_active=True)}
    found = []
    for path in sorted(key_dir.glob("*.key")) if key_dir.is_dir() else []:
        secret = bytes.fromhex(path.read_text().strip())
        validator_id = by_public.get(bls.public_key(secret).hex())
        if validator_id is not None:
            found.append((validator_id, secret))
    return tuple(sorted(found))


def require_quorum() -> tuple[tuple[int, bytes], ...]:
    keys = signing_keys()
    if len(keys) < settings.LEDGER_BLOCK_QUORUM:
        signing_keys.cache_clear()  # keys may have been added since; look again next time
        raise errors.ValidatorKeyMissing(available=len(keys), quorum=settings.LEDGER_BLOCK_QUORUM)
    return keys

"""bank.services.signed_payloads: one signature check for any device payload, with
replay protection by nonce or by sequence; the vectors of docs/SIGNING.md section 10
against the code, py-ecc (an independent secp256k1) and the document's text."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import coincurve
import pytest
from django.db import transaction
from django.utils import timezone
from py_ecc.secp256k1 import secp256k1 as reference

from bank import errors, identity, services
from bank.models import DeviceKey, PayloadNonce, PayloadSequence
from tests.factories import PartyFactory
from tests.voucher.support import race

DOC = (Path(__file__).resolve().parents[2] / "docs" / "SIGNING.md").read_text()
SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PUBLIC = "024e3b81af9c2234cad09d679ce6035ed1392347ce64ce405f5dcd36228a25de6e"
OTHER_SECRET = bytes.fromhex("2a" * 32)

SENSOR_PAYLOAD = {
    "truck": "부산12가3456",
    "lot": "urn:epc:id:sgtin:8801234.012345.1001",
    "readings": [{"temp_c10": 21, "at": 1767225600}, {"at": 1767225660, "temp_c10": -3}],
}
# (scope, payload, replay fields, canonical payload, SHA-256(payload), message, SHA-256(message), signature)
VECTORS = [
    (
        "coldchain.sensor_batch",
        SENSOR_PAYLOAD,
        {"sequence": 42},
        '{"lot":"urn:epc:id:sgtin:8801234.012345.1001","readings":[{"at":1767225600,"temp_c10":21},'
        '{"at":1767225660,"temp_c10":-3}],"truck":"부산12가3456"}',
        "cddf19a8575678c4dd03d110c98c671c467daaaaec4096971fe3f54dcf5457c9",
        b"BKRW-PAYLOAD-1\ncoldchain.sensor_batch\nsequence\n42\n\n"
        b"cddf19a8575678c4dd03d110c98c671c467daaaaec4096971fe3f54dcf5457c9",
        "114f453cc00766d763595e563c361d8c3cb11fb36c7c2a77dbcf26b51aed2051",
        "6aeec2d9d5eeff8c64aca5d56d26dc9286f06314601154da2542c1387d0a6600"
        "47c0c2e724d0c34eae6b34d5cdbe1b5f06c9b0cbaae0fe32e1ec9c89ca2f7b4101",
    ),
    (
        "safety.report_upload",
        {
            "video_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "size": 1048576,
            "category": "road_damage",
        },
        {"nonce": "upload-0001", "timestamp": 1767225600},
        '{"category":"road_damage","size":1048576,'
        '"video_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}',
        "206a42b4b02574ef0a6edae85a624ff781583af1bd3f11f07e17259a41de5450",
        b"BKRW-PAYLOAD-1\nsafety.report_upload\nnonce\nupload-0001\n1767225600\n"
        b"206a42b4b02574ef0a6edae85a624ff781583af1bd3f11f07e17259a41de5450",
        "969135446da785ebd279b90d1af89895f065d1109ba776fa9b81c1af6169d5c6",
        "5da999874419f80459fa6adc9f9259301630453496f3f9457c6c0b55fc7e2ff9"
        "342a174cd8a5a22df5aa6da080825d85b4ea028964496f56cda7a31767bbe12d00",
    ),
]


def _py_ecc_sign(secret: bytes, digest: bytes) -> str:
    """py-ecc's RFC 6979 signature in the wire form: low s, recovery id 0-3."""
    v, r, s = reference.ecdsa_raw_sign(digest, secret)
    recovery_id = v - 27
    if s > identity.HALF_ORDER:
        s, recovery_id = identity.SECP256K1_ORDER - s, recovery_id ^ 1
    return (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recovery_id])).hex()


def _py_ecc_recover(digest: bytes, signature: bytes) -> str:
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    x, y = reference.ecdsa_raw_recover(digest, (signature[64] + 27, r, s))
    return (bytes([2 + (y & 1)]) + x.to_bytes(32, "big")).hex()


def _sign(payload, scope: str, secret: bytes = SECRET, **replay) -> str:
    body = payload if isinstance(payload, bytes) else identity.canonical_json(payload)
    message = identity.signed_payload_message(scope=scope, payload=body, **replay)
    return identity.sign_digest(secret, identity.payload_digest(message)).hex()


def _now() -> int:
    return int(timezone.now().timestamp())


@pytest.fixture
def sensor(db):
    party = PartyFactory()
    return party, services.register_device_key(party=party, public_key=bytes.fromhex(PUBLIC))


# --- canonical JSON ------------------------------------------------------------------------------


def test_canonical_json_sorts_ascii_keys_drops_whitespace_and_keeps_utf8():
    value = {"b": [True, None, -7], "a": {"z": '부산\n"', "y": 2**53 - 1}}
    assert identity.canonical_json(value) == '{"a":{"y":9007199254740991,"z":"부산\\n\\""},"b":[true,null,-7]}'.encode()


@pytest.mark.parametrize(
    "value",
    [{"t": 2.1}, {"부산": 1}, {1: "a"}, {"n": 2**53}, {"s": "\ud800"}, {"d": datetime(2026, 1, 1)}, {"b": b"x"}],
    ids=["float", "non-ascii-key", "int-key", "too-big", "lone-surrogate", "datetime", "bytes"],
)
def test_a_value_with_no_canonical_form_is_refused(sensor, value):
    party, _ = sensor
    with pytest.raises(identity.NotCanonical):
        identity.canonical_json(value)
    with pytest.raises(errors.PayloadNotCanonical) as caught:
        services.verify_signed_payload(
            holder=party, payload=value, signature="00" * 65, scope="coldchain.sensor_batch", sequence=1
        )
    assert caught.value.code == "payload_not_canonical"


# --- the vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "payload", "replay", "canonical", "body_digest", "message", "digest", "signature"), VECTORS
)
def test_each_payload_vector_matches_the_code_py_ecc_and_the_doc(
    scope, payload, replay, canonical, body_digest, message, digest, signature
):
    body = identity.canonical_json(payload)
    assert body == canonical.encode() and hashlib.sha256(body).hexdigest() == body_digest
    made = identity.signed_payload_message(scope=scope, payload=body, **replay)
    assert made == message and identity.payload_digest(made).hex() == digest
    assert identity.sign_digest(SECRET, bytes.fromhex(digest)).hex() == signature
    assert _py_ecc_sign(SECRET, bytes.fromhex(digest)) == signature
    assert _py_ecc_recover(bytes.fromhex(digest), bytes.fromhex(signature)) == PUBLIC
    for value in (canonical, body_digest, message.decode().replace("\n", "\\n"), digest, signature):
        assert value in DOC


def test_the_server_accepts_the_vectors_once_each(sensor, monkeypatch):
    party, device = sensor
    monkeypatch.setattr(timezone, "now", lambda: datetime.fromtimestamp(1767225600 + 30, tz=UTC))
    for scope, payload, replay, canonical, *_, signature in VECTORS:
        for form in (payload, canonical.encode()):  # the object, or its canonical bytes as received
            checked = services.check_signed_payload(
                holder=party, payload=form, signature=signature, scope=scope, **replay
            )
            assert checked == device
        assert (
            services.verify_signed_payload(holder=party, payload=payload, signature=signature, scope=scope, **replay)
            == device
        )
    with pytest.raises(errors.SequenceNotIncreasing):
        scope, payload, replay, *_, signature = VECTORS[0]
        services.verify_signed_payload(device_key=device, payload=payload, signature=signature, scope=scope, **replay)
    with pytest.raises(errors.SignatureReplayed):
        scope, payload, replay, *_, signature = VECTORS[1]
        services.verify_signed_payload(device_key=device, payload=payload, signature=signature, scope=scope, **replay)


def test_a_py_ecc_signature_passes_and_a_coincurve_one_recovers_in_py_ecc(sensor):
    party, device = sensor
    body = identity.canonical_json({"gate": "haeundae-aquarium-3", "pass": 881})
    message = identity.signed_payload_message(scope="tour.gate_scan", payload=body, sequence=7)
    digest = identity.payload_digest(message)
    by_py_ecc = _py_ecc_sign(SECRET, digest)
    assert (
        services.verify_signed_payload(
            device_key=device.pk, payload=body, signature=by_py_ecc, scope="tour.gate_scan", sequence=7
        )
        == device
    )
    assert _py_ecc_recover(digest, identity.sign_digest(SECRET, digest)) == device.public_key


# --- who signed ----------------------------------------------------------------------------------


def test_a_signature_for_one_scope_or_payload_never_passes_for_another(sensor):
    party, _ = sensor
    signature = _sign({"a": 1}, "tour.gate_scan", sequence=1)
    for payload, scope in [({"a": 1}, "safety.report_upload"), ({"a": 2}, "tour.gate_scan")]:
        with pytest.raises(errors.SignatureInvalid):
            services.verify_signed_payload(holder=party, payload=payload, signature=signature, scope=scope, sequence=1)
    with pytest.raises(errors.SignatureInvalid):  # the same bytes under a different sequence number
        services.verify_signed_payload(
            holder=party, payload={"a": 1}, signature=signature, scope="tour.gate_scan", sequence=2
        )
    assert not PayloadSequence.objects.exists()


def test_only_an_active_key_of_the_holder_signs(sensor):
    party, device = sensor
    stranger = PartyFactory()
    strangers_key = services.register_device_key(
        party=stranger, public_key=coincurve.PrivateKey(OTHER_SECRET).public_key.format()
    )
    foreign = _sign({"a": 1}, "tour.gate_scan", secret=OTHER_SECRET, sequence=1)
    with pytest.raises(errors.SignatureInvalid):  # a real signature, by a key that is not the holder's
        services.verify_signed_payload(
            holder=party, payload={"a": 1}, signature=foreign, scope="tour.gate_scan", sequence=1
        )
    with pytest.raises(errors.DeviceKeyUnknown):
        services.verify_signed_payload(
            holder=party,
            device_key=strangers_key,
            payload={"a": 1},
            signature=foreign,
            scope="tour.gate_scan",
            sequence=1,
        )
    own = _sign({"a": 1}, "tour.gate_scan", sequence=1)
    with pytest.raises(errors.SignatureInvalid):  # the key named is not the one that signed
        services.verify_signed_payload(
            device_key=strangers_key, payload={"a": 1}, signature=own, scope="tour.gate_scan", sequence=1
        )
    services.revoke_device_key(actor=None, device=device, reason="lost")
    with pytest.raises(errors.DeviceKeyUnknown):
        services.verify_signed_payload(
            device_key=device, payload={"a": 1}, signature=own, scope="tour.gate_scan", sequence=1
        )
    with pytest.raises(errors.SignatureInvalid):
        services.verify_signed_payload(
            holder=party, payload={"a": 1}, signature=own, scope="tour.gate_scan", sequence=1
        )


def test_a_high_s_or_malformed_signature_is_refused(sensor):
    party, _ = sensor
    raw = bytes.fromhex(_sign({"a": 1}, "tour.gate_scan", sequence=1))
    high_s = (
        raw[:32]
        + (identity.SECP256K1_ORDER - int.from_bytes(raw[32:64], "big")).to_bytes(32, "big")
        + bytes([raw[64] ^ 1])
    )
    with pytest.raises(errors.SignatureMalleable):
        services.verify_signed_payload(
            holder=party, payload={"a": 1}, signature=high_s, scope="tour.gate_scan", sequence=1
        )
    for bad in ("zz", raw.hex()[:-2] + "1b", raw[:64]):
        with pytest.raises(errors.SignatureInvalid):
            services.verify_signed_payload(
                holder=party, payload={"a": 1}, signature=bad, scope="tour.gate_scan", sequence=1
            )


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"nonce": "abcdefgh", "timestamp": 1, "sequence": 1},
        {"sequence": -1},
        {"sequence": 2**63},
        {"sequence": True},
    ],
    ids=["neither", "both", "negative", "too-big", "bool"],
)
def test_a_payload_carries_exactly_one_valid_nonce_or_sequence(sensor, fields):
    party, _ = sensor
    with pytest.raises(errors.InvalidEntry):
        services.verify_signed_payload(
            holder=party, payload=b"x", signature="00" * 65, scope="tour.gate_scan", **fields
        )


def test_a_scope_is_short_lower_case_text(sensor):
    party, _ = sensor
    for scope in ("", "Tour", "tour gate", "x" * 41, None):
        with pytest.raises(errors.InvalidEntry):
            services.check_signed_payload(holder=party, payload=b"x", signature="00" * 65, scope=scope)


# --- replays -------------------------------------------------------------------------------------


def test_a_nonce_is_used_once_per_key_and_scope_within_its_window(sensor):
    party, device = sensor
    stamp = _now()
    fields = {"nonce": "upload-0002", "timestamp": stamp}
    for scope in ("safety.report_upload", "tour.gate_scan"):  # scopes keep their own nonces
        signature = _sign(b"video", scope, **fields)
        services.verify_signed_payload(holder=party, payload=b"video", signature=signature, scope=scope, **fields)
    with pytest.raises(errors.SignatureReplayed) as caught:
        services.verify_signed_payload(
            holder=party,
            payload=b"video",
            signature=_sign(b"video", "tour.gate_scan", **fields),
            scope="tour.gate_scan",
            **fields,
        )
    assert caught.value.code == "signature_replayed" and caught.value.http_status == 409
    old = {"nonce": "upload-0003", "timestamp": stamp - 301}
    with pytest.raises(errors.TimestampOutOfWindow):
        services.verify_signed_payload(
            holder=party, payload=b"v", signature=_sign(b"v", "tour.gate_scan", **old), scope="tour.gate_scan", **old
        )
    # a scope whose uploads sync later may allow a longer window
    assert (
        services.verify_signed_payload(
            holder=party,
            payload=b"v",
            signature=_sign(b"v", "tour.gate_scan", **old),
            scope="tour.gate_scan",
            window_seconds=3600,
            **old,
        )
        == device
    )
    with pytest.raises(errors.TimestampOutOfWindow):  # a nonce needs its signed timestamp
        services.verify_signed_payload(
            holder=party, payload=b"v", signature="00" * 65, scope="tour.gate_scan", nonce="upload-0004"
        )


def test_forgetting_nonces_keeps_those_still_inside_a_window(sensor):
    party, _ = sensor
    fields = {"nonce": "upload-0005", "timestamp": _now()}
    services.verify_signed_payload(
        holder=party,
        payload=b"v",
        signature=_sign(b"v", "safety.report_upload", **fields),
        scope="safety.report_upload",
        **fields,
    )
    assert services.forget_old_payload_nonces() == 0
    assert services.forget_old_payload_nonces(now=timezone.now() + timedelta(seconds=601)) == 1
    assert not PayloadNonce.objects.exists()


def test_sequence_numbers_must_rise_per_key_and_scope_gaps_allowed(sensor):
    party, device = sensor

    def send(sequence, scope="coldchain.sensor_batch"):
        payload = {"seq": sequence}
        signature = _sign(payload, scope, sequence=sequence)
        return services.verify_signed_payload(
            holder=party, payload=payload, signature=signature, scope=scope, sequence=sequence
        )

    assert [send(n) for n in (0, 1, 5)] == [device] * 3
    for stale in (5, 3):
        with pytest.raises(errors.SequenceNotIncreasing) as caught:
            send(stale)
        assert caught.value.details["last"] == 5 and caught.value.code == "sequence_not_increasing"
    assert send(1, scope="coldchain.storage_batch") == device  # another scope counts on its own
    assert PayloadSequence.objects.get(device=device, scope="coldchain.sensor_batch").last_sequence == 5


def test_a_payload_whose_work_rolled_back_can_be_sent_again(sensor):
    party, device = sensor
    signature = _sign({"seq": 9}, "coldchain.sensor_batch", sequence=9)
    fields = {
        "holder": party,
        "payload": {"seq": 9},
        "signature": signature,
        "scope": "coldchain.sensor_batch",
        "sequence": 9,
    }
    with pytest.raises(RuntimeError), transaction.atomic():
        services.verify_signed_payload(**fields)
        raise RuntimeError("the batch's readings failed to store")
    assert services.verify_signed_payload(**fields) == device


# --- real races on PostgreSQL ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_replays_of_one_signed_payload_pass_once():
    party = PartyFactory()
    device = services.register_device_key(party=party, public_key=bytes.fromhex(PUBLIC))
    nonce_fields = {"nonce": "race-nonce-1", "timestamp": _now()}
    by_nonce = _sign(b"report", "safety.report_upload", **nonce_fields)
    by_sequence = _sign(b"batch", "coldchain.sensor_batch", sequence=3)

    def upload_report():
        with transaction.atomic():
            return services.verify_signed_payload(
                holder=party, payload=b"report", signature=by_nonce, scope="safety.report_upload", **nonce_fields
            )

    def upload_batch():
        with transaction.atomic():
            return services.verify_signed_payload(
                holder=party, payload=b"batch", signature=by_sequence, scope="coldchain.sensor_batch", sequence=3
            )

    outcomes = race([upload_report] * 6 + [upload_batch] * 6)
    reports, batches = outcomes[:6], outcomes[6:]
    assert sorted(map(str, reports)) == sorted([str(device)] + ["signature_replayed"] * 5), reports
    assert sorted(map(str, batches)) == sorted([str(device)] + ["sequence_not_increasing"] * 5), batches
    assert PayloadNonce.objects.count() == 1
    assert PayloadSequence.objects.get().last_sequence == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_sequence_numbers_never_let_a_lower_one_in_after_a_higher():
    party = PartyFactory()
    device = services.register_device_key(party=party, public_key=bytes.fromhex(PUBLIC))
    signatures = {n: _sign({"seq": n}, "coldchain.sensor_batch", sequence=n) for n in range(1, 9)}

    def send(n):
        return services.verify_signed_payload(
            holder=party, payload={"seq": n}, signature=signatures[n], scope="coldchain.sensor_batch", sequence=n
        )

    outcomes = race([lambda n=n: send(n) for n in range(1, 9)])
    accepted = [n for n, outcome in zip(range(1, 9), outcomes, strict=True) if isinstance(outcome, DeviceKey)]
    assert 8 in accepted and set(outcomes) <= {device, "sequence_not_increasing"}, outcomes
    assert PayloadSequence.objects.get().last_sequence == 8

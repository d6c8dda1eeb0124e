"""The wallet API under load: signed payments through gunicorn (2 workers) on
PostgreSQL, driven by wrk from another process, next to the same server's
throughput on a trivial authenticated endpoint (GET /api/v1/auth/me/), taking
turns; plus the cost of one signature check and the time split of a payment
from an instrumented in-process run.

Every payment request is signed and carries its own nonce and Idempotency-Key,
made before each timed slot (signing is the client's work, not the server's),
so wrk only replays bytes and no request is ever sent twice.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.scratch import Missing, Server, django_database, migrate

WORKERS = 2
CONNECTIONS = 4  # two requests waiting per sync worker: the workers never idle, the queue stays short
WRK_THREADS = 2
WALLETS = 200
PAYMENT = 1_000  # won; each wallet holds 1,000,000, so 200 wallets pay 200,000 times
SIGNED_PER_SECOND = 1_500  # payments signed ahead per second of a slot; far above what 2 workers take
PROFILED_PAYMENTS = 300
PAY_PATH = "/api/v1/wallet/payments/"
ME_PATH = "/api/v1/auth/me/"
LUA = Path(__file__).resolve().parent / "wrk" / "requests.lua"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def require() -> None:
    if shutil.which("wrk") is None:
        raise Missing("wrk is not installed (the API benchmark's load tool): apt-get install wrk")
    if not GUNICORN.exists():
        raise Missing(f"gunicorn is not in {GUNICORN.parent}: make install (it is in requirements.txt)")


@dataclass(frozen=True)
class Citizen:
    token: str
    device_id: int
    secret: bytes


@dataclass(frozen=True)
class Shop:
    merchant_id: int
    citizens: list[Citizen]


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    ran_out: bool

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- arranging the scratch database ----------------------------------------------------------


def arrange(wallets: int = WALLETS) -> Shop:
    """A merchant and `wallets` citizens, each with a login token, a device key and
    1,000,000 won of paid-in tokens, made through the services as in production."""
    import coincurve
    from django.contrib.auth import get_user_model

    from bank import services as bank_services
    from bank.models import Party
    from voucher import services
    from voucher.services.merchants import brn_check_digit

    users = get_user_model()
    officer = users.objects.create_user("bench-officer", is_staff=True)
    bank = bank_services.open_party(kind=Party.Kind.BANK, external_ref="bench:bank")
    cash = bank_services.open_account(
        owner=bank, code="bench:cash", currency="KRW", normal_side="asset", may_go_negative=True
    )
    merchant = services.onboard_merchant(
        actor=officer,
        business_registration_number="617800001" + str(brn_check_digit("617800001")),
        name="Bench Gukbap",
        category="restaurant",
        district="jung",
        annual_revenue=500_000_000,
    )
    citizens = []
    for index in tqdm(range(wallets), desc="wallets", unit="wallet", leave=False):
        party = bank_services.open_party(kind=Party.Kind.PERSON, external_ref=f"bench:citizen:{index}")
        user = users.objects.create_user(f"bench-citizen-{index}")
        wallet = services.open_wallet(owner=party, user=user)
        bank_services.post_entry(
            lines=[(cash.pk, -1_000_000), (wallet.deposit_account_id, 1_000_000)], kind="bench_cash_deposit"
        )
        services.top_up(wallet=wallet, amount=1_000_000, idempotency_key=f"bench-seed-{index}")
        secret = (index + 1).to_bytes(32, "big")
        # The bank's own setup step (audited), as the demo's phones would enroll with a teller's code.
        device = bank_services.register_device_key(
            party=party, public_key=coincurve.PrivateKey(secret).public_key.format(), label="bench phone"
        )
        citizens.append(Citizen(token=bank_services.issue_api_token(user=user).key, device_id=device.pk, secret=secret))
    return Shop(merchant_id=merchant.pk, citizens=citizens)


# --- requests -------------------------------------------------------------------------------


def _raw(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    raw = "\r\n".join(lines) + "\r\n\r\n" + body.decode()
    assert "~" not in raw and "\n" not in body.decode()
    return raw.replace("\r\n", "~")


def signed_payment_headers(citizen: Citizen, body: bytes, path: str = PAY_PATH) -> dict[str, str]:
    from bank import identity

    nonce, timestamp = uuid.uuid4().hex, int(time.time())
    payload = identity.request_payload(method="POST", path=path, body=body, nonce=nonce, timestamp=timestamp)
    return {
        "Authorization": f"Token {citizen.token}",
        "Content-Type": "application/json",
        "Idempotency-Key": uuid.uuid4().hex,
        "X-Device-Key": str(citizen.device_id),
        "X-Nonce": nonce,
        "X-Timestamp": str(timestamp),
        "X-Signature": identity.sign_digest(citizen.secret, identity.payload_digest(payload)).hex(),
    }


def payment_body(shop: Shop, serial: int) -> bytes:
    return json.dumps({"merchant": shop.merchant_id, "amount": PAYMENT, "reference": f"bench-{serial}"}).encode()


def write_payments(shop: Shop, count: int, host: str, path: Path, start: int) -> None:
    with path.open("w") as out:
        for serial in range(start, start + count):
            citizen = shop.citizens[serial % len(shop.citizens)]
            body = payment_body(shop, serial)
            out.write(_raw("POST", PAY_PATH, host, signed_payment_headers(citizen, body), body) + "\n")


def write_me(shop: Shop, host: str, path: Path) -> None:
    with path.open("w") as out:
        for citizen in shop.citizens:
            out.write(_raw("GET", ME_PATH, host, {"Authorization": f"Token {citizen.token}"}) + "\n")


# --- the server and the load tool -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(server: Server, dbname: str):
    """gunicorn with WORKERS sync workers serving the project on `dbname`; yields host:port."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=server.url_for(dbname),
        DEBUG="0",
        SECRET_KEY=env.get("SECRET_KEY") or "bench-" + uuid.uuid4().hex,
        DB_CONN_MAX_AGE="600",  # persistent connections, as a production deployment runs
        THROTTLE_USER="100000000/min",  # the benchmark measures the server, not the per-user throttle
        THROTTLE_ANON="100000000/min",
        # In production TLS ends at the proxy and Django sees it in X-Forwarded-Proto; here
        # wrk speaks plain HTTP to gunicorn directly, so the redirect to HTTPS would answer
        # every request (and the readiness probe) with a 301. Everything else runs as deployed.
        SECURE_SSL_REDIRECT="0",
    )
    log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [str(GUNICORN), "config.wsgi:application", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_serving(port, process, log.name)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_serving(port: int, process: subprocess.Popen, log: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{ME_PATH}", timeout=2)
        except urllib.error.HTTPError:
            return  # 401 without a token: it serves
        except OSError:
            time.sleep(0.2)
            continue
        return
    raise RuntimeError(f"gunicorn did not answer within 60 s; see {log}")


def wrk(host: str, requests_file: Path, seconds: int, *, cycle: bool) -> LoadResult:
    env = dict(os.environ, BENCH_REQUESTS=str(requests_file), BENCH_THREADS=str(WRK_THREADS))
    env["BENCH_CYCLE"] = "1" if cycle else "0"
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s"]
    command += ["-s", str(LUA), f"http://{host}/"]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    summary = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        non_2xx=summary["non_2xx"],
        socket_errors=summary["socket_errors"] + summary["timeouts"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        ran_out=summary["threads_ran_out"] > 0,
    )


# --- in-process measurements ----------------------------------------------------------------


def signature_check_us(shop: Shop, rounds: int = 3000) -> float:
    """One payment signature check's own work: payload, digest, low-s check, key recovery, compare."""
    from bank import identity

    citizen = shop.citizens[0]
    body = payment_body(shop, 0)
    headers = signed_payment_headers(citizen, body)
    public_key = identity.recover_signer(
        identity.payload_digest(
            identity.request_payload(
                method="POST", path=PAY_PATH, body=body, nonce=headers["X-Nonce"], timestamp=int(headers["X-Timestamp"])
            )
        ),
        bytes.fromhex(headers["X-Signature"]),
    ).hex()
    started = time.perf_counter()
    for _ in range(rounds):
        signature = bytes.fromhex(headers["X-Signature"])
        assert identity.is_low_s(signature)
        digest = identity.payload_digest(
            identity.request_payload(
                method="POST", path=PAY_PATH, body=body, nonce=headers["X-Nonce"], timestamp=int(headers["X-Timestamp"])
            )
        )
        assert identity.recover_signer(digest, signature).hex() == public_key
    return (time.perf_counter() - started) / rounds * 1e6


class Split:
    """Exclusive wall time per part of a request: time goes to the innermost part running."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._stack: list[tuple[str, float]] = []

    def enter(self, part: str) -> None:
        now = time.perf_counter()
        if self._stack:
            above, since = self._stack[-1]
            self.seconds[above] = self.seconds.get(above, 0.0) + now - since
        self._stack.append((part, now))

    def leave(self) -> None:
        now = time.perf_counter()
        part, since = self._stack.pop()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - since
        if self._stack:
            above, _ = self._stack[-1]
            self._stack[-1] = (above, now)

    @property
    def current(self) -> str | None:
        return self._stack[-1][0] if self._stack else None

    def timed(self, part: str, function):
        def wrapper(*args, **kwargs):
            self.enter(part)
            try:
                return function(*args, **kwargs)
            finally:
                self.leave()

        return wrapper


@contextmanager
def instrumented(split: Split):
    """Time the parts of a payment where they run: the signature check, the ledger's
    posting service (its SQL included), other database queries (the ORM, the
    idempotency store, the nonce), and serialization (serializers and the renderer)."""
    from django.db import connection
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer

    from bank.http.signing import SignedPostMixin
    from bank.services import posting

    patched = []

    def patch(owner, name, replacement):
        patched.append((owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)))
        setattr(owner, name, replacement)

    patch(SignedPostMixin, "authorize_request", split.timed("signature check", SignedPostMixin.authorize_request))
    from voucher import services

    patch(services, "pay", split.timed("voucher service (checks, ORM queries built in Python)", services.pay))
    for name in ("post_entry", "post_entries"):
        original = getattr(posting, name)
        timed = split.timed("ledger", original)
        for module in list(sys.modules.values()):
            if getattr(module, name, None) is original:
                patch(module, name, timed)
    patch(JSONRenderer, "render", split.timed("serialization", JSONRenderer.render))
    for cls in (serializers.Serializer, serializers.ListSerializer):
        data = cls.__dict__["data"]
        patch(cls, "data", property(split.timed("serialization", data.fget)))

    def database(execute, sql, params, many, context):
        if split.current == "ledger":
            return execute(sql, params, many, context)
        split.enter("SQL round trips outside the ledger (ORM, idempotency store, nonce, COMMIT)")
        try:
            return execute(sql, params, many, context)
        finally:
            split.leave()

    try:
        with connection.execute_wrapper(database):
            yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def profile_payments(shop: Shop, count: int = PROFILED_PAYMENTS) -> dict[str, float]:
    """Microseconds per payment by part, from `count` payments through the Django test client."""
    from django.test import Client

    client = Client()
    split = Split()
    with instrumented(split):
        for serial in range(count):
            citizen = shop.citizens[serial % len(shop.citizens)]
            body = payment_body(shop, 10**9 + serial)
            headers = {
                f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_payment_headers(citizen, body).items()
            }
            headers.pop("HTTP_CONTENT_TYPE")
            split.enter("Django and DRF (routing, auth, throttle, middleware, views)")
            response = client.generic("POST", PAY_PATH, body, content_type="application/json", **headers)
            split.leave()
            if response.status_code != 201:
                raise RuntimeError(f"profiled payment refused: {response.status_code} {response.content[:300]!r}")
    return {part: seconds / count * 1e6 for part, seconds in split.seconds.items()}


# --- the run ----------------------------------------------------------------------------------


def run(server: Server, seconds: int, rounds: int, figures: dict, notes: dict, step) -> None:
    from voucher.models import Payment

    scratch = f"{server.name}_bench_api"
    slot = max(2, round(seconds / rounds))
    print(
        f"api: scratch database {scratch} (created fresh), gunicorn {WORKERS} sync workers, wrk {WRK_THREADS} threads "
        f"x {CONNECTIONS} connections; {rounds} x {slot} s per endpoint, taking turns"
    )
    server.create_fresh(scratch)
    with django_database(scratch):
        migrate()
        shop = arrange()
        figures["sig_verify_us"] = signature_check_us(shop)
        step(f"one payment signature check (coincurve): {figures['sig_verify_us']:.0f} us")
        split = profile_payments(shop)
        total = sum(split.values())
        for part, micros in sorted(split.items(), key=lambda item: -item[1]):
            step(f"  {part}: {micros:,.0f} us ({micros / total:.0%})")
        notes["api_pay_vs_trivial"] = "profile per payment: " + ", ".join(
            f"{part} {micros / total:.0%}" for part, micros in sorted(split.items(), key=lambda item: -item[1])
        )
        figures["api_pay_profile_us"] = total
        payments_before = Payment.objects.count()

    trivial, pay = [], []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder, gunicorn(server, scratch) as host:
        me_file, pay_file = Path(folder) / "me.txt", Path(folder) / "pay.txt"
        write_me(shop, host, me_file)
        wrk(host, me_file, 2, cycle=True)  # warm both workers' connections and caches
        if not server.checkpoint():
            step("(no CHECKPOINT before the slots: the role may not; latencies may include one)")
        serial = 0
        for _ in range(rounds):
            result = wrk(host, me_file, slot, cycle=True)
            trivial.append(result)
            step(f"GET {ME_PATH}: {result.per_second:,.0f} req/s, p99 {result.p99_ms:.1f} ms")
            count = SIGNED_PER_SECOND * slot
            write_payments(shop, count, host, pay_file, serial)  # signed now, so every timestamp is fresh
            serial += count
            result = wrk(host, pay_file, slot, cycle=False)
            pay.append(result)
            step(
                f"POST {PAY_PATH}: {result.per_second:,.0f} payments/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
            )
            if result.ran_out:
                raise RuntimeError("wrk sent every signed payment before the slot ended: raise SIGNED_PER_SECOND")
    with django_database(scratch):
        made = Payment.objects.count() - payments_before
    refused = sum(r.non_2xx + r.socket_errors for r in pay + trivial)
    sent = sum(r.requests for r in pay)
    # wrk counts the answers it read before its clock stopped; the requests still in flight then
    # (at most one per connection per slot) were served too.
    if refused or not sent <= made <= sent + CONNECTIONS * len(pay):
        raise RuntimeError(
            f"the load was not clean: {refused} refused or failed requests, {made} payments for {sent} sent"
        )

    figures["api_trivial_req_per_s"] = sum(r.per_second for r in trivial) / len(trivial)
    figures["api_pay_per_s"] = sum(r.per_second for r in pay) / len(pay)
    figures["api_pay_vs_trivial"] = figures["api_pay_per_s"] / figures["api_trivial_req_per_s"]
    figures["api_pay_p50_ms"] = sum(r.p50_ms for r in pay) / len(pay)
    figures["api_pay_p99_ms"] = max(r.p99_ms for r in pay)
    notes["api_pay_per_s"] = f"{sent:,} signed payments, every one a 201 and a Payment row"
    notes["api_pay_p99_ms"] = f"worst slot of {len(pay)}"
    server.drop(scratch)

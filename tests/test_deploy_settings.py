"""Production settings (DEBUG off, from the environment as a deployment sets them) pass
`manage.py check --deploy`, and really redirect to HTTPS and send HSTS; development
(DEBUG=1, `make run`, this suite) stays on plain HTTP."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Ours to remove is everything but the schema's "tokenAuth" name clash, which the API
# tokens work of issue 13 removes.
OTHERS_WARNINGS = ("drf_spectacular.W001",)


PORTAL_LOGIN_OVER_HTTP_AND_HTTPS = (
    "from django.test import Client; c = Client(HTTP_HOST='bank.example');"
    "plain = c.get('/portal/login/');"
    "tls = c.get('/portal/login/', HTTP_X_FORWARDED_PROTO='https');"
    "print(plain.status_code, plain.get('Location'));"
    "print(tls.status_code, tls.get('Strict-Transport-Security'))"
)


def production(*argv: str, debug: str = "0") -> subprocess.CompletedProcess:
    """manage.py with the environment a deployment sets (Django's test runner would force DEBUG off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env.update(
        DEBUG=debug, SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)), ALLOWED_HOSTS="bank.example"
    )
    return subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_deploy_checks_pass_under_production_settings():
    result = production("check", "--deploy")
    assert result.returncode == 0, result.stderr
    issues = [line for line in result.stderr.splitlines() if line.startswith("?: (")]
    assert [line for line in issues if not line.startswith(tuple(f"?: ({w})" for w in OTHERS_WARNINGS))] == []


def test_production_redirects_plain_http_and_sends_hsts_behind_the_proxy():
    result = production("shell", "-c", PORTAL_LOGIN_OVER_HTTP_AND_HTTPS)
    assert result.returncode == 0, result.stderr
    plain, tls = result.stdout.strip().splitlines()[-2:]
    assert plain == "301 https://bank.example/portal/login/"
    assert tls == "200 max-age=31536000; includeSubDomains; preload"


def test_development_stays_on_plain_http():
    result = production("shell", "-c", PORTAL_LOGIN_OVER_HTTP_AND_HTTPS, debug="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2:] == ["200 None", "200 None"]

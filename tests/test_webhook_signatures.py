"""Webhook signatures in the Standard Webhooks scheme, and the one webhook URL rule of the API and the CLI.

The published test vector is the one the Standard Webhooks reference libraries test against
(standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py, ``test_sign_function``).
The verifier below is written from the spec, independently of verticals, so that a receiver using any
Standard Webhooks library accepts what the server sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from verticals.tenancy import tenants, webhooks

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = "1614265330"
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None,
                tolerance_s: int = 300) -> bool:
    """A verifier from the spec: strip ``whsec_``, base64-decode the key, HMAC-SHA256 over
    ``{id}.{timestamp}.{body}``, compare against each space-separated ``v1,<base64>``; refuse stale timestamps."""
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id, timestamp = lower["webhook-id"], lower["webhook-timestamp"]
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for versioned in lower["webhook-signature"].split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(expected, base64.b64decode(signature)):
            return True
    return False


def test_the_published_test_vector_is_reproduced_exactly():
    assert webhooks.standard_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": VECTOR_TIMESTAMP, "webhook-signature": VECTOR_SIGNATURE}
    now = int(VECTOR_TIMESTAMP) + 10
    assert webhooks.verify(VECTOR_SECRET, VECTOR_BODY, headers, now=now)
    assert spec_verify(VECTOR_SECRET, headers, VECTOR_BODY, now=now)  # the spec verifier agrees with the vector
    # the reference libraries' negative case: one character of the signature changed
    assert not webhooks.verify(VECTOR_SECRET, VECTOR_BODY,
                               {**headers, "webhook-signature": VECTOR_SIGNATURE[:-2] + "A="}, now=now)


def test_verify_refuses_tampering_stale_timestamps_wrong_ids_and_accepts_one_of_several_signatures():
    now = int(VECTOR_TIMESTAMP)
    good = {"Webhook-Id": VECTOR_ID, "Webhook-Timestamp": VECTOR_TIMESTAMP, "Webhook-Signature": VECTOR_SIGNATURE}
    assert webhooks.verify(VECTOR_SECRET, VECTOR_BODY, good, now=now)  # header names are case-insensitive
    assert not webhooks.verify(VECTOR_SECRET, VECTOR_BODY + b" ", good, now=now)
    assert not webhooks.verify(VECTOR_SECRET, VECTOR_BODY, {**good, "Webhook-Id": "msg_other"}, now=now)
    assert not webhooks.verify(VECTOR_SECRET, VECTOR_BODY, good, now=now + 301)
    assert not webhooks.verify(VECTOR_SECRET, VECTOR_BODY, good, now=now - 301)
    assert not webhooks.verify("whsec_" + base64.b64encode(b"another key").decode(), VECTOR_BODY, good, now=now)
    rotated = {**good, "Webhook-Signature": f"v1,bm9wZQ== v2,xyz {VECTOR_SIGNATURE}"}
    assert webhooks.verify(VECTOR_SECRET, VECTOR_BODY, rotated, now=now)
    assert not webhooks.verify(VECTOR_SECRET, VECTOR_BODY, {**good, "Webhook-Timestamp": "soon"}, now=now)


def test_new_secrets_are_standard_and_every_attempt_carries_both_signatures():
    secret = tenants.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:], validate=True)) == 24
    body = json.dumps({"id": "d1", "event": "job.finished"}).encode()
    headers = webhooks.signature_headers(secret, "d1", body)
    assert spec_verify(secret, headers, body)
    assert not spec_verify(secret, headers, body.replace(b"finished", b"failed"))
    # the deprecated header is still sent: receivers written for it keep working
    assert webhooks.verify_signature(secret, body, headers["X-Verticals-Timestamp"], headers["X-Verticals-Signature"])
    assert headers["X-Verticals-Timestamp"] == headers["webhook-timestamp"]


def test_a_secret_that_is_not_whsec_base64_is_used_as_raw_bytes():
    chosen = "my own secret, not base64!"
    assert webhooks.signing_key(chosen) == chosen.encode()
    assert webhooks.signing_key("whsec_not*base64") == b"whsec_not*base64"  # e.g. an old url-safe secret
    assert webhooks.signing_key(VECTOR_SECRET) == base64.b64decode(VECTOR_SECRET[6:])
    body = b"{}"
    headers = webhooks.signature_headers(chosen, "d2", body, timestamp="100")
    expected = base64.b64encode(hmac.new(chosen.encode(), b"d2.100.{}", hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v1," + expected


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.1.2.3/x"])
def test_cli_and_api_share_one_url_rule(url, monkeypatch, tmp_path):
    """`verticals webhooks add` refuses what the API refuses (a loopback or private receiver) unless
    VERTICALS_WEBHOOK_ALLOW_PRIVATE=1, and then accepts it: the store applies the rule for both."""
    from tests.conftest import run_cli
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import TenantError, Tenants

    env = {"VERTICALS_HOME": str(tmp_path), "VERTICALS_DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
           "VERTICALS_WEBHOOK_ALLOW_PRIVATE": ""}
    refused = run_cli("webhooks", "add", "--tenant", "acme", "--url", url, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "VERTICALS_WEBHOOK_ALLOW_PRIVATE=1" in refused.stderr and "Traceback" not in refused.stderr
    listed = run_cli("webhooks", "list", env=env)
    assert url not in listed.stdout

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(TenantError, match="private or internal"):
        Tenants(open_store()).create_webhook("acme", url)

    allowed = run_cli("webhooks", "add", "--tenant", "acme", "--url", url,
                      env={**env, "VERTICALS_WEBHOOK_ALLOW_PRIVATE": "1"})
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["secret"].startswith("whsec_")


def test_cli_refuses_a_url_that_is_not_http():
    from tests.conftest import run_cli

    refused = run_cli("webhooks", "add", "--tenant", "acme", "--url", "ftp://example.com/x")
    assert refused.returncode == 2 and "http" in refused.stderr

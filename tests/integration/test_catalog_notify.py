"""telegram.send_message, sms.send, push.send and http.request against local HTTP servers
playing the Telegram Bot API, a Twilio-compatible SMS API and FCM HTTP v1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conveyor.catalog import telegram
from conveyor.errors import ArgumentsInvalid, TemporaryError
from conveyor.jobs import JobState
from conveyor.policies.retry import RetryPolicy
from conveyor.testing import InlineConveyor
from tests.support.catalog import Configure, configure
from tests.support.http import Receiver, http_receiver

pytestmark = pytest.mark.integration

__all__ = ["configure"]

TOKEN = "123456:test-token"
SEND = f"/bot{TOKEN}/sendMessage"
OK_MESSAGE = json.dumps({"ok": True, "result": {"message_id": 42, "chat": {"id": 7}}})
TOO_MANY = json.dumps(
    {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
)
BLOCKED = json.dumps(
    {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
)
NOT_FOUND = json.dumps(
    {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
)


@pytest.fixture(scope="module")
def inline() -> InlineConveyor:
    return InlineConveyor()


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def api(server: Receiver, configure: Configure) -> Receiver:
    with server.lock:
        server.requests.clear()
        server.responses.clear()
    configure(
        telegram_api_url=server.url,
        telegram_bot_token=TOKEN,
        sms_api_url=server.url,
        sms_account_sid="AC123",
        sms_auth_token="sms-secret",
        sms_from="+15550001111",
        fcm_api_url=server.url,
        fcm_project_id="demo-project",
        fcm_access_token="static-bearer",
        http_base_url=server.url,
    )
    return server


# -- telegram ------------------------------------------------------------------------
def test_telegram_sends_message(inline: InlineConveyor, api: Receiver) -> None:
    api.responses[SEND] = [(200, OK_MESSAGE)]
    job = inline.submit("telegram.send_message", chat_id=7, text="<b>Hi</b>", parse_mode="HTML")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result == {"sent": 1, "skipped": 0, "message_id": 42, "chat_id": 7}
    [request] = api.to(SEND)
    assert request.json() == {"chat_id": 7, "text": "<b>Hi</b>", "parse_mode": "HTML"}


def test_telegram_429_retries_after_what_telegram_says(
    inline: InlineConveyor, api: Receiver
) -> None:
    api.responses[SEND] = [(429, TOO_MANY), (200, OK_MESSAGE)]
    job = inline.submit("telegram.send_message", chat_id="@channel", text="hello")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.attempts == 2
    assert len(api.to(SEND)) == 2


def test_telegram_retry_after_sets_the_retry_delay() -> None:
    request = httpx.Request("POST", "http://t/bot/sendMessage")
    with pytest.raises(TemporaryError) as caught:
        telegram.classify(httpx.Response(429, text=TOO_MANY, request=request))
    assert caught.value.retry_after == 3
    policy = RetryPolicy(max_retries=5, base_delay=0.01, retry_on=())
    assert policy.decide(caught.value, attempt=1).delay >= 3


@pytest.mark.parametrize(("status", "body"), [(403, BLOCKED), (400, NOT_FOUND)])
def test_telegram_blocked_or_missing_chat_is_permanent(
    inline: InlineConveyor, api: Receiver, status: int, body: str
) -> None:
    api.responses[SEND] = [(status, body)]
    job = inline.submit("telegram.send_message", chat_id=7, text="hello")
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert json.loads(body)["description"] in (job.error or "")
    assert len(api.to(SEND)) == 1


def test_telegram_transient_errors_get_five_retries(inline: InlineConveyor, api: Receiver) -> None:
    api.responses[SEND] = [(502, "bad gateway")]
    job = inline.submit("telegram.send_message", chat_id=7, text="hello")
    assert job.state in (JobState.DEAD, JobState.FAILED)
    assert len(api.to(SEND)) == 6


def test_telegram_without_token_and_opted_out(
    inline: InlineConveyor, api: Receiver, configure: Configure
) -> None:
    skipped = inline.submit(
        "telegram.send_message", chat_id=7, text="x", recipient={"opted_out": True}
    )
    assert skipped.result == {"sent": 0, "skipped": 1, "reason": "opted_out"}
    configure(telegram_bot_token="")
    job = inline.submit("telegram.send_message", chat_id=7, text="x")
    assert job.state is JobState.DEAD
    assert "CONVEYOR_TELEGRAM_BOT_TOKEN" in (job.error or "")
    assert api.requests == []


# -- sms -----------------------------------------------------------------------------
SMS_PATH = "/2010-04-01/Accounts/AC123/Messages.json"


def test_sms_posts_form_with_basic_auth(inline: InlineConveyor, api: Receiver) -> None:
    api.responses[SMS_PATH] = [(201, json.dumps({"sid": "SM1", "status": "queued"}))]
    job = inline.submit("sms.send", to="+420123456789", text="Your code is 1234")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result == {"sent": 1, "skipped": 0, "sid": "SM1", "status": "queued"}
    [request] = api.to(SMS_PATH)
    assert parse_qs(request.body.decode()) == {
        "To": ["+420123456789"],
        "From": ["+15550001111"],
        "Body": ["Your code is 1234"],
    }
    expected = base64.b64encode(b"AC123:sms-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_sms_invalid_number_is_permanent_and_503_retries(
    inline: InlineConveyor, api: Receiver
) -> None:
    api.responses[SMS_PATH] = [(400, json.dumps({"code": 21211, "message": "Invalid 'To'"}))]
    job = inline.submit("sms.send", to="+420123456789", text="x")
    assert job.state is JobState.DEAD
    assert "21211" in (job.error or "")
    api.responses[SMS_PATH] = [(503, "{}"), (201, json.dumps({"sid": "SM2"}))]
    retried = inline.submit("sms.send", to="+420123456789", text="x")
    assert retried.state is JobState.SUCCEEDED
    assert retried.attempts == 2


def test_sms_refuses_bad_number_at_submit(inline: InlineConveyor, api: Receiver) -> None:
    with pytest.raises(ArgumentsInvalid) as caught:
        inline.submit("sms.send", to="call me", text="x")
    assert [tuple(e["loc"]) for e in caught.value.errors] == [("to",)]


# -- push ----------------------------------------------------------------------------
PUSH_PATH = "/v1/projects/demo-project/messages:send"


def fcm_error(status: int, name: str, code: str) -> tuple[int, str]:
    detail = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    return status, json.dumps(
        {"error": {"code": status, "message": "x", "status": name, "details": [detail]}}
    )


def test_push_reports_invalid_tokens_per_token(inline: InlineConveyor, api: Receiver) -> None:
    api.responses[PUSH_PATH] = [
        (200, json.dumps({"name": "projects/demo-project/messages/1"})),
        fcm_error(404, "NOT_FOUND", "UNREGISTERED"),
        fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    ]
    job = inline.submit(
        "push.send",
        tokens=["good", "gone", "garbage"],
        title="New lesson",
        body="Tap to start",
        data={"lesson": "12"},
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["sent"] == 1
    assert job.result["invalid_tokens"] == ["gone", "garbage"]
    assert [r["status"] for r in job.result["results"]] == ["sent", "invalid", "invalid"]
    requests = api.to(PUSH_PATH)
    assert [r.json()["message"]["token"] for r in requests] == ["good", "gone", "garbage"]
    assert requests[0].json()["message"]["notification"] == {
        "title": "New lesson",
        "body": "Tap to start",
    }
    assert requests[0].json()["message"]["data"] == {"lesson": "12"}
    assert requests[0].headers["Authorization"] == "Bearer static-bearer"


def test_push_bearer_from_token_url(
    inline: InlineConveyor, api: Receiver, configure: Configure
) -> None:
    configure(fcm_access_token="", fcm_token_url=api.url + "/token")
    api.responses["/token"] = [(200, json.dumps({"access_token": "tok-1", "expires_in": 3600}))]
    job = inline.submit("push.send", tokens=["a"], title="t")
    assert job.state is JobState.SUCCEEDED, job.error
    [token_request] = api.to("/token")
    assert token_request.headers["Metadata-Flavor"] == "Google"
    assert api.to(PUSH_PATH)[0].headers["Authorization"] == "Bearer tok-1"


def _verify_jwt(assertion: str, public_key: rsa.RSAPublicKey) -> dict[str, object]:
    header, claims, signature = assertion.split(".")
    padded = signature + "=" * (-len(signature) % 4)
    public_key.verify(
        base64.urlsafe_b64decode(padded),
        f"{header}.{claims}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )  # raises InvalidSignature when wrong
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))
    )
    return decoded


def test_push_bearer_from_a_service_account(
    inline: InlineConveyor, api: Receiver, configure: Configure, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = tmp_path / "sa.json"
    account.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "pusher@demo-project.iam.gserviceaccount.com",
                "private_key": pem,
                "private_key_id": "k1",
                "token_uri": api.url + "/oauth/token",
            }
        )
    )
    configure(fcm_access_token="", fcm_service_account_file=account)
    api.responses["/oauth/token"] = [
        (200, json.dumps({"access_token": "sa-tok", "expires_in": 3599}))
    ]
    first = inline.submit("push.send", tokens=["a"], title="t")
    second = inline.submit("push.send", tokens=["b"], title="t")
    assert first.state is second.state is JobState.SUCCEEDED, first.error
    [exchange] = api.to("/oauth/token")  # the token is cached between jobs
    form = parse_qs(exchange.body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = _verify_jwt(form["assertion"][0], key.public_key())
    assert claims["iss"] == "pusher@demo-project.iam.gserviceaccount.com"
    assert claims["aud"] == api.url + "/oauth/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert [r.headers["Authorization"] for r in api.to(PUSH_PATH)] == ["Bearer sa-tok"] * 2


def test_push_without_credentials_is_permanent(
    inline: InlineConveyor, api: Receiver, configure: Configure
) -> None:
    configure(fcm_access_token="")
    job = inline.submit("push.send", tokens=["a"], title="t")
    assert job.state is JobState.DEAD
    assert "CONVEYOR_FCM_SERVICE_ACCOUNT_FILE" in (job.error or "")
    assert api.requests == []


def test_push_retries_only_when_nothing_went_out(inline: InlineConveyor, api: Receiver) -> None:
    api.responses[PUSH_PATH] = [(503, "{}"), (503, "{}"), (200, json.dumps({"name": "m"}))]
    job = inline.submit("push.send", tokens=["a", "b"], title="t")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.attempts == 2  # attempt 1: 503 for both tokens, nothing sent → retried
    assert job.result["sent"] == 2
    # a partial failure is reported, not retried (a retry would push twice to "a")
    api.responses[PUSH_PATH] = [(200, json.dumps({"name": "m"})), (503, "{}")]
    partial = inline.submit("push.send", tokens=["a", "b"], title="t")
    assert partial.state is JobState.SUCCEEDED
    assert partial.attempts == 1
    assert partial.result["sent"] == 1
    assert partial.result["results"][1]["temporary"] is True


def test_push_refused_credentials_are_permanent(inline: InlineConveyor, api: Receiver) -> None:
    api.responses[PUSH_PATH] = [fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")]
    job = inline.submit("push.send", tokens=["a"], title="t")
    assert job.state is JobState.DEAD
    assert job.attempts == 1


# -- http.request --------------------------------------------------------------------
def test_http_request_relative_url_and_json(inline: InlineConveyor, api: Receiver) -> None:
    api.responses["/internal/reports/daily-digest/trigger"] = [(202, '{"queued": true}')]
    job = inline.submit(
        "http.request",
        method="POST",
        url="/internal/reports/daily-digest/trigger",
        json={"day": "2025-12-01"},
        expected_status=[202],
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result == {"status_code": 202, "body": {"queued": True}}
    [request] = api.to("/internal/reports/daily-digest/trigger")
    assert request.json() == {"day": "2025-12-01"}
    assert request.headers["Idempotency-Key"] == job.id


def test_http_request_retries_5xx_and_fails_on_4xx(inline: InlineConveyor, api: Receiver) -> None:
    api.responses["/flaky"] = [(500, "{}"), (200, "{}")]
    job = inline.submit("http.request", method="GET", url=api.url + "/flaky")
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 2
    api.responses["/missing?q=1"] = [(404, "{}")]
    failed = inline.submit("http.request", method="GET", url="/missing", params={"q": "1"})
    assert failed.state is JobState.DEAD
    assert failed.attempts == 1
    assert api.to("/missing?q=1")

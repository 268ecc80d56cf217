"""email.send / email.send_bulk against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from conveyor.jobs import JobState
from conveyor.testing import InlineConveyor
from tests.support.catalog import Configure, configure
from tests.support.smtp import Mailbox, smtp_server

pytestmark = pytest.mark.integration

__all__ = ["configure"]


@pytest.fixture(scope="module")
def inline() -> InlineConveyor:
    return InlineConveyor()


@pytest.fixture
def plain(tmp_path: Path, configure: Configure) -> Iterator[Mailbox]:
    with smtp_server(tmp_path) as mailbox:
        configure(smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_from="noreply@example.org")
        yield mailbox


def parts(message: EmailMessage) -> dict[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    found = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = part.get_content()
    return found


def test_template_renders_both_parts_in_the_recipients_locale(
    inline: InlineConveyor, plain: Mailbox
) -> None:
    job = inline.submit(
        "email.send",
        to=["ivan@example.org"],
        template="verification",
        context={"username": "Иван", "verification_link": "https://x.example/v?t=<abc>"},
        locale="ru-RU",
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["locale"] == "ru"
    [message] = plain.messages
    assert message["Subject"] == "Подтвердите адрес электронной почты"
    assert message["From"] == "noreply@example.org"
    assert message["To"] == "ivan@example.org"
    body = parts(message)
    assert "Здравствуйте, Иван!" in body["text/plain"]
    assert "https://x.example/v?t=<abc>" in body["text/plain"]
    # the HTML part is autoescaped and uses the shared layout
    assert 'href="https://x.example/v?t=&lt;abc&gt;"' in body["text/html"]
    assert '<html lang="ru">' in body["text/html"]
    assert plain.envelopes == [("noreply@example.org", ["ivan@example.org"])]


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("uk", "Вітаємо, Olha!"), ("de", "Hello Olha,"), (None, "Hello Olha,")],
)
def test_locales_fall_back_to_english(
    inline: InlineConveyor, plain: Mailbox, locale: str | None, expected: str
) -> None:
    job = inline.submit(
        "email.send",
        to=["olha@example.org"],
        template="session_reminder",
        context={
            "username": "Olha",
            "mentor_name": "Bob Smith",
            "session_date": "04.12.2025 15:00",
            "session_link": "https://mentorhub.example/sessions/123",
        },
        recipient={"locale": locale} if locale else None,
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert expected in parts(plain.messages[-1])["text/plain"]


def test_every_builtin_template_renders_in_every_locale(
    inline: InlineConveyor, plain: Mailbox
) -> None:
    contexts = {
        "verification": {"username": "a", "verification_link": "https://e/v"},
        "password_reset": {"username": "a", "reset_link": "https://e/r"},
        "session_reminder": {
            "username": "a",
            "mentor_name": "m",
            "session_date": "d",
            "session_link": "https://e/s",
        },
        "weekly_report": {
            "username": "a",
            "period": "1-7 Dec",
            "items": [{"label": "Lessons", "value": 5}],
        },
        "daily_digest": {"username": "a", "date": "2025-12-01", "items": [{"title": "News"}]},
    }
    subjects = set()
    for name, context in contexts.items():
        for locale in ("en", "ru", "uk"):
            job = inline.submit(
                "email.send", to=["a@example.org"], template=name, context=context, locale=locale
            )
            assert job.state is JobState.SUCCEEDED, (name, locale, job.error)
            assert job.result["locale"] == locale
            subjects.add(plain.messages[-1]["Subject"])
    assert len(subjects) == 15  # every template has its own subject in every language


def test_literal_body_with_attachment(inline: InlineConveyor, plain: Mailbox) -> None:
    job = inline.submit(
        "email.send",
        to=["a@example.org"],
        subject="Your report",
        body="See attached.",
        html="<p>See attached.</p>",
        attachments=[
            {
                "filename": "r.csv",
                "content": base64.b64encode(b"a,b\n1,2\n").decode(),
                "content_type": "text/csv",
            }
        ],
    )
    assert job.state is JobState.SUCCEEDED, job.error
    [message] = plain.messages
    assert message.get_content_type() == "multipart/mixed"
    attachment = next(message.iter_attachments())
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_filename() == "r.csv"
    assert attachment.get_content() == "a,b\n1,2\n"


def test_missing_context_value_is_permanent(inline: InlineConveyor, plain: Mailbox) -> None:
    job = inline.submit(
        "email.send", to=["a@example.org"], template="verification", context={"username": "a"}
    )
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert "verification_link" in (job.error or "")
    assert plain.messages == []


def test_body_or_template_is_required_and_opt_out_skips(
    inline: InlineConveyor, plain: Mailbox
) -> None:
    job = inline.submit("email.send", to=["a@example.org"], subject="x")
    assert job.state is JobState.DEAD
    assert "exactly one of template or body" in (job.error or "")
    skipped = inline.submit(
        "email.send",
        to=["a@example.org"],
        subject="x",
        body="y",
        recipient={"opted_out": True},
    )
    assert skipped.state is JobState.SUCCEEDED
    assert skipped.result == {"sent": 0, "skipped": 1, "reason": "opted_out"}
    assert plain.messages == []


def test_refused_recipient_is_permanent(inline: InlineConveyor, plain: Mailbox) -> None:
    plain.refuse.add("gone@example.org")
    job = inline.submit("email.send", to=["gone@example.org"], subject="x", body="y")
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert "refused recipients" in (job.error or "")


def test_deferred_recipient_is_retried(inline: InlineConveyor, plain: Mailbox) -> None:
    plain.defer.add("busy@example.org")
    job = inline.submit("email.send", to="busy@example.org", subject="x", body="y")
    assert job.state in (JobState.DEAD, JobState.FAILED)
    assert job.attempts == 6
    assert "451" in (job.error or "")


def test_unreachable_server_is_retried(inline: InlineConveyor, configure: Configure) -> None:
    configure(smtp_host="127.0.0.1", smtp_port=1, smtp_timeout=2)
    job = inline.submit("email.send", to=["a@example.org"], subject="x", body="y")
    assert job.state is JobState.DEAD
    assert job.attempts == 6  # 1 run + 5 retries (inline mode retries at once)


def test_starttls_with_authentication(
    inline: InlineConveyor, tmp_path: Path, configure: Configure
) -> None:
    with smtp_server(tmp_path, "starttls", credentials=("mailer", "s3cret-pass")) as mailbox:
        configure(
            smtp_host="127.0.0.1",
            smtp_port=mailbox.port,
            smtp_security="starttls",
            smtp_ca_file=mailbox.ca_file,
            smtp_user="mailer",
            smtp_password="s3cret-pass",
        )
        job = inline.submit("email.send", to=["a@example.org"], subject="tls", body="over tls")
        assert job.state is JobState.SUCCEEDED, job.error
        assert mailbox.logins == ["mailer"]
        assert mailbox.tls_sessions == [True]
        configure(smtp_password="wrong-password")
        refused = inline.submit("email.send", to=["a@example.org"], subject="x", body="y")
        assert refused.state is JobState.DEAD
        assert "authentication failed" in (refused.error or "")
        assert len(mailbox.messages) == 1


def test_ssl_from_the_start(inline: InlineConveyor, tmp_path: Path, configure: Configure) -> None:
    with smtp_server(tmp_path, "ssl") as mailbox:
        configure(
            smtp_host="127.0.0.1",
            smtp_port=mailbox.port,
            smtp_security="ssl",
            smtp_ca_file=mailbox.ca_file,
        )
        job = inline.submit("email.send", to=["a@example.org"], subject="ssl", body="over ssl")
        assert job.state is JobState.SUCCEEDED, job.error
        assert mailbox.tls_sessions == [True]
        assert mailbox.messages[0].get_content().strip() == "over ssl"


def test_untrusted_certificate_is_permanent(
    inline: InlineConveyor, tmp_path: Path, configure: Configure
) -> None:
    with smtp_server(tmp_path, "ssl") as mailbox:
        configure(smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_security="ssl")
        job = inline.submit("email.send", to=["a@example.org"], subject="x", body="y")
        assert job.state is JobState.DEAD
        assert "not trusted" in (job.error or "")
        assert mailbox.messages == []


def test_send_bulk_personalises_batches_and_counts(inline: InlineConveyor, plain: Mailbox) -> None:
    plain.refuse.add("gone@example.org")
    plain.defer.add("busy@example.org")
    recipients = [
        {"email": "a@example.org", "context": {"username": "Anna"}},
        {"email": "b@example.org", "context": {"username": "Борис"}, "recipient": {"locale": "ru"}},
        {"email": "c@example.org", "context": {"username": "C"}, "recipient": {"opted_out": True}},
        {"email": "gone@example.org", "context": {"username": "G"}},
        {"email": "busy@example.org", "context": {"username": "B"}},
        {"email": "d@example.org", "context": {"username": "D"}, "recipient": {"locale": "uk"}},
    ]
    job = inline.submit(
        "email.send_bulk",
        recipients=recipients,
        template="daily_digest",
        context={"date": "2025-12-01", "items": [{"title": "New lesson", "url": "https://e/l"}]},
        batch_size=2,
        per_second=200,
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["sent"] == 3
    assert job.result["skipped"] == 1
    failed = {f["email"]: f["temporary"] for f in job.result["failed"]}
    assert failed == {"gone@example.org": False, "busy@example.org": True}
    texts = {m["To"]: parts(m)["text/plain"] for m in plain.messages}
    assert "Hello Anna," in texts["a@example.org"]
    assert "Здравствуйте, Борис!" in texts["b@example.org"]
    assert "Вітаємо, D!" in texts["d@example.org"]
    assert "New lesson (https://e/l)" in texts["a@example.org"]

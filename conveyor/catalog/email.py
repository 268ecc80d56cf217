"""``email.send`` and ``email.send_bulk``: SMTP (plain, STARTTLS, SSL) with Jinja2 templates.

A message is either a template (rendered to a plain-text and an HTML part,
``multipart/alternative``, in the recipient's locale with fallback to ``en``) or a
literal ``body`` (plus optional ``html``). Server, security and credentials come
from the ``CONVEYOR_SMTP_*`` settings.

Errors: 4xx SMTP replies, timeouts and refused connections are temporary
(retried); 5xx replies, refused recipients, failed authentication and an
untrusted server certificate are permanent.
"""

from __future__ import annotations

import base64
import binascii
import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from conveyor.catalog.common import Recipient, opted_out, settings, skipped
from conveyor.catalog.templating import Rendered, normalize_locale, render
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.settings import Settings
from conveyor.task import task

RETRY = RetryPolicy(max_retries=5, base_delay=5.0, max_delay=600.0, retry_on=())
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


def _as_list(value: Any) -> Any:
    """A single address is accepted where a list is expected."""
    return [value] if isinstance(value, str) else value


TEMPLATE_HELP = (
    "Template name: verification, password_reset, session_reminder, weekly_report, "
    "daily_digest, or your own (CONVEYOR_EMAIL_TEMPLATES_DIR)."
)

#: An email address (checked loosely: the SMTP server has the last word).
Address = Annotated[str, Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$", max_length=320)]


class Attachment(BaseModel):
    """A file attached to an email; ``content`` is base64."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content: str = Field(description="File content, base64-encoded.")
    content_type: str = Field("application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")

    def data(self) -> bytes:
        try:
            raw = base64.b64decode(self.content, validate=True)
        except binascii.Error as exc:
            raise PermanentError(f"attachment {self.filename!r} is not valid base64") from exc
        if len(raw) > MAX_ATTACHMENT_BYTES:
            raise PermanentError(f"attachment {self.filename!r} is larger than 10 MiB")
        return raw


class BulkRecipient(BaseModel):
    """One recipient of ``email.send_bulk``: address, own context values, preferences."""

    model_config = ConfigDict(extra="forbid")

    email: Address
    context: dict[str, Any] = Field(default_factory=dict)
    recipient: Recipient | None = None


class Content(BaseModel):
    """What to send: a template name or a literal body."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = None
    template: str | None = None
    body: str | None = None
    html: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Content:
        if (self.template is None) == (self.body is None):
            raise ValueError("give exactly one of template or body")
        if self.template is None and not self.subject:
            raise ValueError("subject is required with body")
        return self


def compose(
    content: Content,
    context: dict[str, Any],
    locale: str | None,
    cfg: Settings,
) -> Rendered:
    """The subject, text and HTML of one message."""
    if content.template is not None:
        rendered = render(content.template, context, locale, cfg.email_templates_dir)
        subject = content.subject or rendered.subject
        return Rendered(subject, rendered.text, rendered.html, rendered.locale)
    subject = content.subject or ""
    return Rendered(subject, content.body or "", content.html, normalize_locale(locale))


def build_message(
    to: list[str], rendered: Rendered, cfg: Settings, attachments: list[Attachment]
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.smtp_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=cfg.smtp_from.rpartition("@")[2] or None)
    msg["Content-Language"] = rendered.locale
    msg.set_content(rendered.text)
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html")
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(item.data(), maintype=maintype, subtype=subtype, filename=item.filename)
    return msg


class RecipientDeferred(TemporaryError):
    """The server refused the recipients for now (4xx): try again later."""


def _tls_context(cfg: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cfg.smtp_ca_file) if cfg.smtp_ca_file else None)


def _open(cfg: Settings) -> smtplib.SMTP:
    if cfg.smtp_security == "ssl":
        return smtplib.SMTP_SSL(
            cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout, context=_tls_context(cfg)
        )
    client = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout)
    if cfg.smtp_security == "starttls":
        client.starttls(context=_tls_context(cfg))
    return client


@contextmanager
def smtp_errors() -> Iterator[None]:
    """Turn smtplib/socket errors into TemporaryError or PermanentError."""
    try:
        yield
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentError(f"SMTP authentication failed: {exc.smtp_code}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        message = f"SMTP server refused recipients: {sorted(exc.recipients)} ({codes})"
        if codes and all(400 <= code < 500 for code in codes):
            raise RecipientDeferred(message) from exc
        raise PermanentError(message) from exc
    except smtplib.SMTPResponseException as exc:
        message = f"SMTP server answered {exc.smtp_code}: {exc.smtp_error!r}"
        if 400 <= exc.smtp_code < 500:
            raise TemporaryError(message) from exc
        raise PermanentError(message) from exc
    except ssl.SSLCertVerificationError as exc:
        raise PermanentError(f"SMTP server certificate not trusted: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TemporaryError(f"SMTP delivery failed: {exc}") from exc


@contextmanager
def connection(cfg: Settings) -> Iterator[smtplib.SMTP]:
    """A connected (and, if configured, authenticated) SMTP client."""
    with smtp_errors():
        client = _open(cfg)
        try:
            if cfg.smtp_user:
                client.login(cfg.smtp_user, cfg.smtp_password.get_secret_value())
            yield client
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()


@task(
    name="email.send",
    queue="email",
    retry=RETRY,
    time_limit=120,
    soft_time_limit=90,
    rate_limit="20/s",
)
def send(
    to: Annotated[
        list[Address],
        BeforeValidator(_as_list),
        Field(
            min_length=1,
            max_length=100,
            description="Recipient addresses (one message to all of them).",
        ),
    ],
    subject: Annotated[
        str | None,
        Field(description="Subject; required with body, overrides the template's subject."),
    ] = None,
    template: Annotated[
        str | None,
        Field(description=TEMPLATE_HELP),
    ] = None,
    body: Annotated[
        str | None, Field(description="Plain-text body (instead of a template).")
    ] = None,
    html: Annotated[str | None, Field(description="HTML alternative of body.")] = None,
    context: Annotated[
        dict[str, Any] | None,
        Field(description="Values the template uses (e.g. username, reset_link)."),
    ] = None,
    locale: Annotated[
        str | None,
        Field(
            description="en, ru or uk (others fall back to en); default: recipient.locale, then en."
        ),
    ] = None,
    attachments: Annotated[
        list[Attachment] | None, Field(description="Files to attach (base64 content).")
    ] = None,
    recipient: Annotated[
        Recipient | None,
        Field(description="The recipient's preferences; opted_out skips the message."),
    ] = None,
) -> dict[str, Any]:
    """Send one email (template or body) over SMTP to ``to``; skipped if the recipient opted out.

    With ``template``, the subject, plain-text and HTML parts come from the template
    (``subject`` overrides its subject); ``locale`` (or ``recipient.locale``) picks the
    language, falling back to ``en``.
    """
    content = _content(subject, template, body, html)
    if opted_out(recipient):
        return skipped()
    cfg = settings()
    chosen = locale or (recipient.locale if recipient else None)
    rendered = compose(content, context or {}, chosen, cfg)
    message = build_message(list(to), rendered, cfg, attachments or [])
    with connection(cfg) as client, smtp_errors():
        client.send_message(message)
    return {
        "sent": 1,
        "skipped": 0,
        "to": list(to),
        "message_id": message["Message-ID"],
        "locale": rendered.locale,
    }


def _content(
    subject: str | None, template: str | None, body: str | None, html: str | None
) -> Content:
    try:
        return Content(subject=subject, template=template, body=body, html=html)
    except ValueError as exc:
        raise PermanentError(str(exc)) from exc


def _send_one(
    client: smtplib.SMTP,
    item: BulkRecipient,
    content: Content,
    shared: dict[str, Any],
    locale: str | None,
    cfg: Settings,
) -> str:
    chosen = (item.recipient.locale if item.recipient else None) or locale
    rendered = compose(content, {**shared, **item.context}, chosen, cfg)
    message = build_message([str(item.email)], rendered, cfg, [])
    client.send_message(message)
    return rendered.locale


@task(
    name="email.send_bulk",
    queue="email",
    retry=RETRY,
    time_limit=1800,
    soft_time_limit=1700,
    rate_limit="2/m",
)
def send_bulk(
    recipients: Annotated[
        list[BulkRecipient],
        Field(
            min_length=1,
            max_length=10000,
            description="Addresses with per-recipient context and preferences.",
        ),
    ],
    subject: Annotated[
        str | None,
        Field(description="Subject; required with body, overrides the template's subject."),
    ] = None,
    template: Annotated[
        str | None,
        Field(description=TEMPLATE_HELP),
    ] = None,
    body: Annotated[
        str | None, Field(description="Plain-text body (instead of a template).")
    ] = None,
    html: Annotated[str | None, Field(description="HTML alternative of body.")] = None,
    context: Annotated[
        dict[str, Any] | None,
        Field(description="Values the template uses (e.g. username, reset_link)."),
    ] = None,
    locale: Annotated[
        str | None,
        Field(
            description="en, ru or uk (others fall back to en); default: recipient.locale, then en."
        ),
    ] = None,
    batch_size: Annotated[
        int, Field(ge=1, le=1000, description="Messages sent per SMTP connection.")
    ] = 50,
    per_second: Annotated[
        float,
        Field(gt=0, le=1000, description="Most messages sent per second (pause between messages)."),
    ] = 10.0,
) -> dict[str, Any]:
    """Send one message to many recipients, ``batch_size`` per SMTP connection, at most
    ``per_second`` messages a second. Opted-out recipients are skipped and counted; a
    recipient the server refuses is reported in ``failed`` without stopping the others.
    """
    content = _content(subject, template, body, html)
    cfg = settings()
    wanted = [r for r in recipients if not opted_out(r.recipient)]
    result: dict[str, Any] = {"sent": 0, "skipped": len(recipients) - len(wanted), "failed": []}
    pause = 1.0 / per_second
    for start in range(0, len(wanted), batch_size):
        pending = list(wanted[start : start + batch_size])
        try:
            with connection(cfg) as client:
                while pending:
                    _deliver_bulk(client, pending[0], content, context or {}, locale, cfg, result)
                    pending.pop(0)
                    time.sleep(pause)
        except TemporaryError as exc:
            if result["sent"] == 0 and not result["failed"]:
                raise  # nothing sent yet: retrying the whole job duplicates nothing
            result["failed"].extend(
                {"email": str(i.email), "error": str(exc), "temporary": True} for i in pending
            )
    return result


def _deliver_bulk(
    client: smtplib.SMTP,
    item: BulkRecipient,
    content: Content,
    shared: dict[str, Any],
    locale: str | None,
    cfg: Settings,
    result: dict[str, Any],
) -> None:
    try:
        with smtp_errors():
            _send_one(client, item, content, shared, locale, cfg)
    except (PermanentError, RecipientDeferred) as exc:
        temporary = isinstance(exc, TemporaryError)
        result["failed"].append(
            {"email": str(item.email), "error": str(exc), "temporary": temporary}
        )
        return
    result["sent"] += 1

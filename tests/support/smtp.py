"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Mailbox:
    port: int
    ca_file: Path | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_sessions: list[bool] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)


class Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.mailbox.refuse:
            return "550 5.1.1 no such user"
        if address in self.mailbox.defer:
            return "451 4.2.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mailbox.messages.append(message)
        self.mailbox.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.mailbox.tls_sessions.append(tls)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _authenticator(mailbox: Mailbox, user: str, password: str) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        if ok:
            mailbox.logins.append(user)
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_server(
    tmp_path: Path,
    security: Literal["none", "starttls", "ssl"] = "none",
    credentials: tuple[str, str] | None = None,
) -> Iterator[Mailbox]:
    """Run aiosmtpd; for starttls/ssl a throwaway CA signs a cert for 127.0.0.1."""
    mailbox = Mailbox(port=_free_port())
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": mailbox.port}
    if security != "none":
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        mailbox.ca_file = tmp_path / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(mailbox.ca_file))
        if security == "ssl":
            kwargs["ssl_context"] = context
        else:
            kwargs.update(tls_context=context, require_starttls=True)
    if credentials is not None:
        kwargs.update(
            authenticator=_authenticator(mailbox, *credentials),
            auth_required=True,
            auth_require_tls=True,
        )
    controller = Controller(Handler(mailbox), **kwargs)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()

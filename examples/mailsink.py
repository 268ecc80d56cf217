"""A STAND-IN mail server for ``conveyor up --example``: accepts every message and
prints its sender, recipients and subject. Nothing is delivered anywhere.

It speaks just enough SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for the
catalog's ``email.*`` tasks with ``CONVEYOR_SMTP_SECURITY=none``. For local demos
only; set ``CONVEYOR_SMTP_*`` to a real server otherwise.

    python -m examples.mailsink --port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from email import message_from_bytes, policy

MAX_MESSAGE = 20 * 1024 * 1024
HELP = "python -m examples.mailsink [--host H] [--port P]"


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    def reply(line: str) -> None:
        writer.write(line.encode() + b"\r\n")

    sender, recipients = "", list[str]()
    reply("220 conveyor-example mail sink (stand-in, delivers nothing)")
    while line := await reader.readline():
        command = line.decode(errors="replace").strip()
        verb = command[:4].upper()
        if verb in ("EHLO", "HELO"):
            reply("250 mail sink")
        elif verb == "MAIL":
            sender, recipients = command[10:].strip(), []
            reply("250 OK")
        elif verb == "RCPT":
            recipients.append(command[8:].strip())
            reply("250 OK")
        elif verb == "DATA":
            reply("354 end with <CRLF>.<CRLF>")
            await writer.drain()
            raw = await reader.readuntil(b"\r\n.\r\n")
            message = message_from_bytes(raw[:-5], policy=policy.default)
            print(
                f"mail sink: {sender} -> {', '.join(recipients)}: {message['Subject']}", flush=True
            )
            reply("250 OK queued (nowhere)")
        elif verb == "QUIT":
            reply("221 bye")
            await writer.drain()
            break
        else:  # RSET, NOOP and anything else
            reply("250 OK")
        await writer.drain()
    writer.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(_session, host, port, limit=MAX_MESSAGE)
    print(f"mail sink (stand-in, delivers nothing) on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(usage=HELP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

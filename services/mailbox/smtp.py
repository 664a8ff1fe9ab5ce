"""The inbound SMTP server (aiosmtpd) on the service's own event loop: recipients other than
the tenant's complaint addresses are refused (550), mail over the size limit too (552, by
aiosmtpd from ``data_size_limit``, and announced in EHLO's SIZE), a mail without a complaint
in it is refused (550 5.6.0), and 250 is said only once the mail is stored."""

import asyncio
import logging
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.mailbox.domain import MailRefused, masked
from services.mailbox.flows import Mailbox

log = logging.getLogger(__name__)
# aiosmtpd logs every command it reads at INFO, addresses included (MAIL FROM, RCPT TO): the
# service logs outcomes itself, with addresses masked.
logging.getLogger("mail.log").setLevel(logging.WARNING)
UNKNOWN_RECIPIENT = "550 5.1.1 Recipient address rejected: not a complaint address of this mailbox"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"


@dataclass
class InboundHandler:
    mailbox: Mailbox
    addresses: frozenset[str]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802 (aiosmtpd's name)
                          address: str, rcpt_options: list[str]) -> str:
        if address.strip().lower() not in self.addresses:
            log.info("mail to %s refused: not a complaint address", masked(address))
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        try:
            await self.mailbox.keep(raw, envelope.mail_from)
        except MailRefused as refused:
            log.info("mail from %s refused: %s", masked(envelope.mail_from or ""), refused.reply)
            return refused.reply
        except Exception as error:  # not stored: the sender's server keeps it and tries again
            log.error("mail from %s not stored (%s): answered 451", masked(envelope.mail_from or ""),
                      type(error).__name__)
            return TRY_LATER
        return "250 2.0.0 Stored, thank you"


async def start_smtp(mailbox: Mailbox, *, host: str, port: int, max_bytes: int) -> asyncio.Server:
    addresses = frozenset(a.strip().lower() for a in mailbox.settings.mailbox_addresses)
    handler = InboundHandler(mailbox, addresses)
    loop = asyncio.get_running_loop()
    # decode_data False: the raw bytes are stored as they came (original_content).
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=max_bytes, enable_SMTPUTF8=True,
                     ident="Disposisi mailbox"),
        host=host, port=port)

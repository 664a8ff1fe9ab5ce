"""Attachment flows: a file uploaded with a complaint, or fetched from a URL the complaint
names (``media_url``, ``attachments``), checked (services.intake.media) and stored in GridFS.

A URL is fetched after the complaint is stored and answered, so a slow or dead photo host
never holds up or loses a complaint; a refused or failed fetch is logged (host and reason,
never the URL's path or query, which may carry a name) and the URL stays on the complaint."""

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from services.intake.attachment_store import COMPLAINT, Attachment, AttachmentStore
from services.intake.media import Checked, MediaRefused, check, public_address
from services.intake.store import complaint_of
from shared.mongo import Document
from shared.settings import Settings

log = logging.getLogger(__name__)


def hides_identity(doc: Document) -> bool:
    complaint = complaint_of(doc)
    return bool(complaint.get("anonymous") or complaint.get("confidential"))


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Pinned:
    """A GET to the checked address itself, naming the host only in ``Host`` and TLS (SNI and
    the certificate's name are checked against the host, not the address)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pinned(parts: SplitResult, port: int, address: str) -> Pinned:
    literal = f"[{address}]" if ":" in address else address
    url = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
    host = parts.netloc.rpartition("@")[2]  # never the URL's user:password
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return Pinned(url, {"Host": host}, extensions)


@dataclass
class Attachments:
    settings: Settings
    store: AttachmentStore
    resolve: Resolver = system_resolver

    async def inspect(self, content: bytes, *, hide_identity: bool) -> Checked:
        """The file as it would be kept (stripped, with its thumbnail); MediaRefused says why
        not. Decoding an image is CPU work: it runs off the event loop."""
        s = self.settings
        return await asyncio.to_thread(
            check, content, allowed=s.attachment_types, max_bytes=s.attachment_max_bytes,
            hide_identity=hide_identity, thumbnail_pixels=s.attachment_thumbnail_pixels)

    async def keep(self, doc: Document, checked: Checked, *, source: str = "upload",
                   purpose: str = COMPLAINT) -> Attachment:
        return await self.store.save(doc["ticket_id"], doc["tenant"], checked, source=source,
                                     purpose=purpose)

    async def add(self, doc: Document, content: bytes, *, source: str = "upload") -> Attachment:
        """Check and keep one file of this stored complaint; MediaRefused says why not."""
        checked = await self.inspect(content, hide_identity=hides_identity(doc))
        return await self.keep(doc, checked, source=source)

    async def fetch(self, url: str) -> bytes:
        """The URL's content within the size and time limits; MediaRefused when refused."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaRefused("only http and https URLs are fetched")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise MediaRefused("the URL's port is not a number") from None
        try:
            # The name's resolution counts within the time too: a dead resolver must not hold
            # a fetch (nor a stopping service) longer than any other slow host.
            async with asyncio.timeout(self.settings.attachment_fetch_seconds):
                address = await self._address(parts.hostname, port)
                return await self._download(pinned(parts, port, address))
        except TimeoutError:
            raise MediaRefused(f"not fetched within {self.settings.attachment_fetch_seconds:g} s") from None
        except httpx.HTTPError as error:
            raise MediaRefused(f"fetch failed: {type(error).__name__}") from None

    async def _address(self, host: str, port: int) -> str:
        """The one address the fetch connects to, resolved once: a name that answers a public
        address to this check and a private one to a second lookup (DNS rebinding) never gets
        that second lookup."""
        try:
            addresses = await self.resolve(host, port)
        except OSError:
            raise MediaRefused("the URL's host does not resolve") from None
        if not addresses:
            raise MediaRefused("the URL's host does not resolve")
        if not self.settings.attachment_fetch_private and not public_address(addresses):
            raise MediaRefused("the URL's host is on a loopback, private or reserved address")
        return addresses[0]

    async def _download(self, request: "Pinned") -> bytes:
        limit = self.settings.attachment_max_bytes
        # No redirects: a redirect could lead to an address the check above did not see.
        async with httpx.AsyncClient(follow_redirects=False) as http, http.stream(
                "GET", request.url, headers=request.headers,
                extensions=request.extensions) as response:
            if response.status_code != 200:
                raise MediaRefused(f"the URL answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise MediaRefused(f"the file is larger than {limit} bytes")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise MediaRefused(f"the file is larger than {limit} bytes")
            return bytes(body)

    async def fetch_all(self, doc: Document) -> None:
        """Fetch and keep every URL the complaint names; never raises (runs after the answer)."""
        withheld = doc.get("withheld") or {}
        for url in complaint_of(doc).get("attachments") or withheld.get("attachments") or []:
            host = urlsplit(url).hostname or "?"
            try:
                await self.add(doc, await self.fetch(url), source="media_url")
            except MediaRefused as refused:
                log.warning("attachment of %s from %s not kept: %s", doc["ticket_id"], host, refused)
            except Exception as error:  # the complaint is stored; an attachment is best effort
                log.warning("attachment of %s from %s failed: %s", doc["ticket_id"], host,
                            type(error).__name__)

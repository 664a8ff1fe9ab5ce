"""Reading mails for the e-mail channel: plain text preferred and HTML read as text, an
unknown charset still read, quotes of earlier mails left out, attachments found, the
tracking number found in the subject or the threading headers, refusals with SMTP codes."""

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from services.mailbox.domain import (
    NO_TEXT,
    MailRefused,
    agency_messages,
    complaint_text,
    complaint_title,
    masked,
    read_mail,
    reply_subject,
    ticket_named,
)
from shared.contracts import PublicStep

TEXT = "Lampu jalan di Jl. Suprapto mati sejak seminggu, mohon diperbaiki."


def mail(body: str | None = TEXT, *, subject: str = "Lampu jalan mati", html: str | None = None,
         **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Budi <budi@example.com>"
    message["To"] = "pengaduan@kota.example"
    message["Subject"] = subject
    message["Message-ID"] = "<m1@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if body is not None:
        message.set_content(body)
    if html is not None:
        if body is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def test_plain_text_is_preferred_and_html_alone_is_read_as_text() -> None:
    both = read_mail(mail(html="<p>versi <b>HTML</b></p>").as_bytes())
    assert both.text == TEXT
    html = read_mail(mail(None, html="<html><head><style>p{}</style></head><body><p>Sampah "
                                     "<b>menumpuk</b> di pasar</p><script>x()</script></body>"
                                     "</html>").as_bytes())
    assert "Sampah" in html.text and "menumpuk" in html.text and "<" not in html.text
    assert "x()" not in html.text and "p{}" not in html.text
    assert both.sender == "budi@example.com" and both.message_id == "<m1@example.com>"


def test_an_unknown_charset_is_read_with_the_undecodable_bytes_replaced() -> None:
    raw = (b"From: budi@example.com\r\nTo: pengaduan@kota.example\r\nSubject: Jalan\r\n"
           b"Message-ID: <c@example.com>\r\nContent-Type: text/plain; charset=x-tidak-dikenal\r\n"
           b"\r\nJalan berlubang besar di depan pasar \xff\xfe sangat berbahaya\r\n")
    read = read_mail(raw)
    assert read.text.startswith("Jalan berlubang besar di depan pasar")
    assert "berbahaya" in read.text


def test_quotes_of_earlier_mails_are_left_out() -> None:
    body = ("Fotonya terlampir, lokasinya di depan SD 5.\n\nPada 1 Des 2026, Pengaduan "
            "menulis:\n> Mohon kirim foto lokasi\n> terima kasih")
    read = read_mail(mail(body).as_bytes())
    assert read.text == "Fotonya terlampir, lokasinya di depan SD 5."


def test_a_mail_without_any_complaint_text_is_refused_with_550() -> None:
    with pytest.raises(MailRefused) as refused:
        read_mail(mail("", subject="").as_bytes())
    assert refused.value.reply == NO_TEXT and NO_TEXT.startswith("550 5.6.0")
    # A long enough subject is the complaint when the body is empty.
    only_subject = read_mail(mail("", subject="Pohon tumbang menutup jalan").as_bytes())
    assert complaint_text(only_subject) == "Pohon tumbang menutup jalan"


def test_attachments_are_found_and_addresses_in_the_text_are_masked() -> None:
    message = mail("Lihat foto. Hubungi saya di budi@example.com, terima kasih banyak.")
    message.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="a.png")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="b.pdf")
    read = read_mail(message.as_bytes())
    assert read.attachments == [b"\x89PNG fake", b"%PDF-1.4"]
    assert "budi@example.com" not in complaint_text(read)
    assert complaint_title(read) == "Lampu jalan mati"


def test_the_tracking_number_is_found_in_the_subject_or_the_threading_headers() -> None:
    by_subject = read_mail(mail(subject="Re: [BKL-261201-7K3QX9AB] Lampu jalan mati").as_bytes())
    assert ticket_named(by_subject) == "BKL-261201-7K3QX9AB"
    by_header = read_mail(mail(subject="Re: jawaban saya",
                               In_Reply_To="<BKL-261201-7K3QX9AB.abcdef@kota.example>").as_bytes())
    assert ticket_named(by_header) == "BKL-261201-7K3QX9AB"
    assert ticket_named(read_mail(mail().as_bytes())) is None
    assert reply_subject("BKL-261201-7K3QX9AB", "Re: [BKL-261201-7K3QX9AB] Lampu jalan mati") == \
        "[BKL-261201-7K3QX9AB] Lampu jalan mati"


def test_bounces_and_auto_replies_are_not_complaints() -> None:
    assert read_mail(mail(Auto_Submitted="auto-replied").as_bytes()).automatic
    assert read_mail(mail().as_bytes(), envelope_sender="").automatic
    assert not read_mail(mail().as_bytes(), envelope_sender="budi@example.com").automatic


def test_only_the_agency_messages_meant_for_the_citizen_become_mails() -> None:
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    history = [PublicStep(at=at, action="assigned", agency="DLH"),
               PublicStep(at=at, action="needs_info", agency="DLH", note="Mohon kirim foto"),
               PublicStep(at=at, action="responded", agency="DLH")]
    [message] = agency_messages("BKL-1", history)
    assert (message.action, message.note) == ("needs_info", "Mohon kirim foto")
    assert message.source == f"BKL-1:needs_info:{at.isoformat()}"


def test_a_masked_address_keeps_no_more_than_its_first_letter() -> None:
    assert masked("budi.santoso@example.com") == "b***@***"

"""Link previews: the head of an HTML page read through the egress policy (bounded in bytes and time,
HTML only, an image-typed thumbnail re-encoded as a small JPEG), mapped to neonize's own
ExtendedTextMessage, and seen by the receiving simulated session. Against real HTTP servers on
127.0.0.1."""

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from aiohttp import web
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ExtendedTextMessage
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from PIL import Image

from zaphub_contracts.content import LinkPreview, TextContent
from zaphub_contracts.events import MessageReceivedData
from zaphub_runtime.egress import EgressClient, EgressPolicy
from zaphub_session_host.link_previews import LinkPreviews, extract, first_url
from zaphub_session_host.transport.neonize.events import content_from_message
from zaphub_session_host.transport.neonize.messages import build_message

from .conftest import Client_, HostFactory, eventually
from .test_host import connected_session, send_cmd
from .test_media import answer, serve

PEER = "5511988887777@s.whatsapp.net"
HEAD = b"""<!doctype html><html><head><meta charset="utf-8">
<title>  Plain   title </title>
<meta property="og:title" content="Caf&eacute; &amp; Bar">
<meta name="description" content="The menu,
  today">
<meta property="og:image" content="/img/cover.png">
</head><body><meta property="og:description" content="in the body: not read"></body></html>"""


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_the_head_gives_title_description_and_an_absolute_image() -> None:
    """OpenGraph first, then `<title>` and the description meta; entities decoded, spaces folded,
    the image made absolute; nothing after `<body>` counts."""
    meta = extract(HEAD, "https://shop.example/menu/today")
    assert meta.title == "Café & Bar"
    assert meta.description == "The menu, today"
    assert meta.image == "https://shop.example/img/cover.png"
    plain = extract(b"<html><head><title>Only a title</title></head>", "https://x.example/")
    assert (plain.title, plain.description, plain.image) == ("Only a title", None, None)
    latin = extract(
        "<title>Ol\xe1</title>".encode("latin-1"), "https://x.example/", "text/html; charset=ISO-8859-1"
    )
    assert latin.title == "Olá"
    assert extract(b'<meta property="og:image" content="javascript:alert(1)">', "https://x/").image is None


def test_the_first_url_of_the_text_is_the_one_previewed() -> None:
    """The first http(s) URL, without the sentence's punctuation; none in plain text."""
    assert first_url("See https://a.example/x?y=1, and http://b.example.") == "https://a.example/x?y=1"
    assert first_url("(http://a.example/path)") == "http://a.example/path"
    assert first_url("no link here, ftp://nope") is None


@pytest.fixture
async def http() -> AsyncIterator[EgressClient]:
    async with EgressClient(EgressPolicy.from_allow_list("127.0.0.1")) as client:
        yield client


async def test_a_page_and_its_image_become_a_preview_with_a_small_jpeg(http: EgressClient) -> None:
    """Title, description and thumbnail: the image, whatever its size, arrives as a JPEG of at most
    256 px a side."""
    routes = {
        "/menu": answer(HEAD, "text/html; charset=utf-8"),
        "/img/cover.png": answer(png(900, 600), "image/png"),
    }
    async with serve(routes) as (port, seen):
        preview = await LinkPreviews(http).preview(f"Today: http://127.0.0.1:{port}/menu!")
    assert preview is not None and seen == ["/menu", "/img/cover.png"]
    assert (preview.url, preview.title, preview.description) == (
        f"http://127.0.0.1:{port}/menu",
        "Café & Bar",
        "The menu, today",
    )
    assert preview.thumbnail_base64 is not None
    with Image.open(io.BytesIO(base64.b64decode(preview.thumbnail_base64))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 256


async def test_only_html_is_read_and_only_its_head(http: EgressClient) -> None:
    """A JSON or image answer is no preview; a huge page is read to the cap only, so tags within it
    count and tags past it do not."""
    streamed: list[int] = []

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"<html><head><title>Early</title>")
        for i in range(5000):  # 5 MB that never end the head
            await response.write(b"<!-- " + b"x" * 1014 + b" -->")
            streamed.append(i)
            await asyncio.sleep(0)
        return response

    late = b"<html><head>" + b"<!-- pad -->" * 1000 + b"<title>Late</title></head>"
    routes = {
        "/json": answer(b'{"title": "no"}', "application/json"),
        "/image": answer(png(10, 10), "image/png"),
        "/huge": huge,
        "/late": answer(late, "text/html"),
    }
    previews = LinkPreviews(http, page_max_bytes=4096)
    async with serve(routes) as (port, _):
        base = f"http://127.0.0.1:{port}"
        assert await previews.preview(f"{base}/json") is None
        assert await previews.preview(f"{base}/image") is None
        early = await previews.preview(f"{base}/huge")
        assert early is not None and early.title == "Early"
        assert len(streamed) < 1000  # the rest was never read
        assert await previews.preview(f"{base}/late") is None


async def test_a_bad_thumbnail_is_left_out_and_a_slow_page_gives_no_preview(http: EgressClient) -> None:
    """A thumbnail that is not image-typed, too large or not an image is dropped (the preview stays);
    a page slower than the deadline is no preview, within the deadline."""

    def page(image: str) -> bytes:
        return f'<head><title>T</title><meta property="og:image" content="{image}"></head>'.encode()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=HEAD, content_type="text/html")

    routes = {
        "/as-html": answer(page("/i.html"), "text/html"),
        "/i.html": answer(b"<html>", "text/html"),
        "/too-big": answer(page("/big.png"), "text/html"),
        "/big.png": answer(png(10, 10) + b"\0" * 20_000, "image/png"),
        "/garbage": answer(page("/junk.png"), "text/html"),
        "/junk.png": answer(b"not a png at all", "image/png"),
        "/slow": slow,
    }
    previews = LinkPreviews(http, image_max_bytes=10_000, deadline=1.0)
    async with serve(routes) as (port, _):
        for path in ("/as-html", "/too-big", "/garbage"):
            preview = await previews.preview(f"http://127.0.0.1:{port}{path}")
            assert preview is not None and preview.title == "T" and preview.thumbnail_base64 is None, path
        started = asyncio.get_running_loop().time()
        assert await previews.preview(f"http://127.0.0.1:{port}/slow") is None
        assert asyncio.get_running_loop().time() - started < 2.0


async def test_a_refused_address_is_not_asked_and_the_text_stays_as_it_was() -> None:
    """Without ZAPHUB_EGRESS_ALLOW, a loopback page is never requested; the content comes back unchanged."""
    async with (
        serve({"/": answer(HEAD, "text/html")}) as (port, seen),
        EgressClient(EgressPolicy()) as strict,
    ):
        text = TextContent(text=f"http://127.0.0.1:{port}/", link_preview=True)
        assert await LinkPreviews(strict).attach(text) == text
    assert seen == []


def test_a_preview_maps_to_neonizes_extended_text_message_and_back() -> None:
    """matchedText, title, description and JPEGThumbnail of neonize's own ExtendedTextMessage; a
    contact's such message arrives as the same preview."""
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg"
    preview = LinkPreview(
        url="https://shop.example/menu",
        title="Café & Bar",
        description="The menu",
        thumbnail_base64=base64.b64encode(jpeg).decode(),
    )
    content = TextContent(text="Today: https://shop.example/menu", preview=preview)
    msg = build_message(content, PEER)
    assert not msg.conversation and msg.HasField("extendedTextMessage")
    ext = msg.extendedTextMessage
    assert (ext.text, ext.matchedText, ext.title, ext.description) == (
        "Today: https://shop.example/menu",
        "https://shop.example/menu",
        "Café & Bar",
        "The menu",
    )
    assert ext.JPEGThumbnail == jpeg and ext.previewType == ExtendedTextMessage.PreviewType.NONE
    assert not ext.HasField("contextInfo")
    assert build_message(TextContent(text="plain https://x.example", link_preview=True), PEER).conversation

    received = content_from_message(WAMessage.FromString(msg.SerializeToString()))
    assert isinstance(received, TextContent) and received.preview == preview


def received(client: Client_, session: UUID) -> list[MessageReceivedData]:
    return [e.data for e in client.events.of("message.received", session)]  # type: ignore[misc]


async def test_the_receiving_simulated_session_sees_the_preview(
    client: Client_, start_host: HostFactory
) -> None:
    """A text sent with link_preview to another simulated session arrives with the page's title,
    description and thumbnail; one whose page fails arrives without a preview."""
    routes = {"/menu": answer(HEAD, "text/html"), "/img/cover.png": answer(png(64, 64), "image/png")}
    async with serve(routes) as (port, _):
        await start_host(egress_allow="127.0.0.1")
        tenant, a = await connected_session(client)
        _, b = await connected_session(client)
        jid_b = client.events.of("session.connected", b)[-1].data.jid
        for seq, path in ((1, "/menu"), (2, "/missing")):
            text = TextContent(text=f"see http://127.0.0.1:{port}{path}", link_preview=True)
            cmd = send_cmd(tenant, a, to=str(jid_b), seq=seq).model_copy(update={"content": text})
            (reply,) = await client.send(a, cmd, timeout=10)
            assert reply.status == "ok"
        got = await eventually(lambda: received(client, b)[1:] and received(client, b))
    with_preview, without = (m.content for m in got)
    assert isinstance(with_preview, TextContent) and with_preview.preview is not None
    assert with_preview.preview.title == "Café & Bar" and with_preview.preview.thumbnail_base64
    assert with_preview.link_preview is False  # the sender's request is not part of what arrives
    assert isinstance(without, TextContent) and without.preview is None

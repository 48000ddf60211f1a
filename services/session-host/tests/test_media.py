"""Media for sends: a URL is fetched only through the egress policy, with a byte cap, a content type
that must fit the kind, and generic failure details; ffmpeg reads only the local file, with the
demuxer the validated type names. Against a real HTTP server on 127.0.0.1."""

import base64
import contextlib
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from zaphub_contracts.content import AudioContent, DocumentContent, ImageContent
from zaphub_contracts.failures import FailureReason, is_transient
from zaphub_runtime.egress import EgressClient, EgressPolicy
from zaphub_session_host.handlers import failure
from zaphub_session_host.media_fetch import MediaBytes
from zaphub_session_host.transport.base import InvalidContent, MediaUrlRefused, TransientSendError
from zaphub_session_host.transport.neonize import media
from zaphub_session_host.transport.neonize.media import load_media, to_voice_note

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECRET = b'{"AccessKeyId": "internal-secret"}'


@contextlib.asynccontextmanager
async def serve(routes: dict[str, Handler]) -> AsyncIterator[tuple[int, list[str]]]:
    """A real aiohttp server on 127.0.0.1; yields its port and the paths it was asked for."""
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[record])
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], seen
    finally:
        await runner.cleanup()


def answer(body: bytes, content_type: str, status: int = 200) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    return handle


def redirect(location: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    return handle


async def test_media_url_to_an_internal_address_is_refused_and_nothing_is_fetched() -> None:
    """Loopback by address, by `localhost` and by redirect: media_url_refused, the server sees nothing
    of the internal path, and the detail shows neither the body nor what the address answered."""
    routes = {"/secret": answer(SECRET, "image/png"), "/hop": redirect("http://169.254.169.254/latest")}
    async with serve(routes) as (port, seen), EgressClient(EgressPolicy()) as client:
        for url in (f"http://127.0.0.1:{port}/secret", f"http://localhost:{port}/secret"):
            with pytest.raises(MediaUrlRefused) as refused:
                await load_media(DocumentContent(url=url), client)
            error = failure(refused.value)
            assert error.reason is FailureReason.MEDIA_URL_REFUSED and not is_transient(error.reason)
            assert "secret" not in (error.detail or "") and str(port) not in (error.detail or "")
        assert seen == []
    # The operator lets 127.0.0.1 through; the redirect to the metadata address is still refused.
    local = EgressPolicy.from_allow_list("127.0.0.1")
    async with serve(routes) as (port, seen), EgressClient(local) as client:
        with pytest.raises(MediaUrlRefused):
            await load_media(DocumentContent(url=f"http://127.0.0.1:{port}/hop"), client)
        assert seen == ["/hop"]


async def test_media_by_url_is_capped_type_checked_and_fails_with_generic_details() -> None:
    """Oversize, a type that does not fit the kind, or a 4xx is permanent, a 5xx transient; no detail
    carries a status code or the remote body; a fit image loads with the server's type."""
    routes = {
        "/ok.jpg": answer(b"\xff\xd8jpeg", "image/jpeg"),
        "/big.jpg": answer(b"x" * 2048, "image/jpeg"),
        "/page": answer(SECRET, "text/html"),
        "/gone": answer(SECRET, "text/plain", 404),
        "/down": answer(SECRET, "text/plain", 503),
    }
    async with serve(routes) as (port, _), EgressClient(EgressPolicy.from_allow_list("127.0.0.1")) as http:
        base = f"http://127.0.0.1:{port}"
        got = await load_media(ImageContent(url=f"{base}/ok.jpg"), http, max_bytes=1024)
        assert got == MediaBytes(b"\xff\xd8jpeg", "image/jpeg")
        # The tenant's mimetype cannot relabel what the server sent.
        relabelled = ImageContent(url=f"{base}/page", mimetype="image/png")
        with pytest.raises(InvalidContent, match="text/html"):
            await load_media(relabelled, http, max_bytes=1024)
        with pytest.raises(InvalidContent, match="more than"):
            await load_media(ImageContent(url=f"{base}/big.jpg"), http, max_bytes=1024)
        for path, kind in (("/gone", InvalidContent), ("/down", TransientSendError)):
            with pytest.raises(kind) as caught:
                await load_media(ImageContent(url=base + path), http, max_bytes=1024)
            detail = failure(caught.value).detail or ""
            assert "404" not in detail and "503" not in detail and "secret" not in detail
        with pytest.raises(TransientSendError) as unreachable:
            await load_media(ImageContent(url="http://127.0.0.1:9/a.jpg"), http)
        assert "9" not in (failure(unreachable.value).detail or "")
        with pytest.raises(InvalidContent, match="base64"):
            await load_media(ImageContent(data_base64="not base64!"), http)
        doc = await load_media(DocumentContent(data_base64=base64.b64encode(b"%PDF").decode()), http)
        assert doc.mimetype == "application/octet-stream"


FAKE_FFMPEG = """#!/bin/sh
printf '%s\\n' "$@" > "{log}.$(basename "$0")"
printf 'OggS'
"""


async def test_ffmpeg_reads_only_the_local_file_with_the_demuxer_of_the_checked_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A playlist that points at a local http URL is not given to ffmpeg (no demuxer for its type),
    and an mp3 goes to ffmpeg with `-protocol_whitelist file,pipe` and `-f mp3` before its input."""
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:1/x.ts\n#EXT-X-ENDLIST\n"
    async with serve({"/x.ts": answer(b"ts", "video/mp2t")}) as (port, seen):
        hls = playlist.replace(b":1/", f":{port}/".encode())
        log = tmp_path / "argv"  # each tool writes its argv to argv.<tool>
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("ffmpeg", "ffprobe"):
            script = bin_dir / tool
            script.write_text(FAKE_FFMPEG.format(log=log))
            script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        for mimetype in ("application/vnd.apple.mpegurl", "audio/mpegurl", "audio/x-mpegurl"):
            content = AudioContent(data_base64=base64.b64encode(hls).decode(), mimetype=mimetype, voice=True)
            with pytest.raises(InvalidContent):  # not audio, or no demuxer for it
                await to_voice_note(await load_media(content, EgressClient(EgressPolicy())))
        assert not (tmp_path / "argv.ffmpeg").exists() and seen == []
        await to_voice_note(MediaBytes(b"ID3", "audio/mpeg"))
    for tool, fmt in (("ffmpeg", "mp3"), ("ffprobe", "ogg")):  # ffprobe measures the converted note
        argv = (tmp_path / f"argv.{tool}").read_text().split("\n")
        at = argv.index("-i")
        assert argv[at - 4 : at] == ["-protocol_whitelist", "file,pipe", "-f", fmt]
        assert argv[at + 1].startswith("file:")
    assert media.demuxer("audio/mpeg") == "mp3"

"""Media for sends: bytes from `data_base64` or an http(s) URL (size cap, content-type check), and the
ffmpeg/ffprobe steps WhatsApp needs (voice notes in ogg/opus, stickers in webp, video thumbnails).

Downloads stream through httpx; ffmpeg runs as a subprocess; neither blocks the event loop.
"""

import asyncio
import base64
import binascii
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from zaphub_contracts.content import (
    AudioContent,
    DocumentContent,
    ImageContent,
    StickerContent,
    VideoContent,
)
from zaphub_session_host.transport.base import InvalidContent, MediaToolsMissing, TransientSendError

log = logging.getLogger(__name__)

MediaBody = ImageContent | VideoContent | AudioContent | DocumentContent | StickerContent

MAX_MEDIA_BYTES = 64 * 1024 * 1024  # WhatsApp's own cap for video and audio; documents may be larger
FETCH_TIMEOUT = 60.0
FFMPEG_TIMEOUT = 120.0
MEDIA_TOOLS = ("ffmpeg", "ffprobe")
OPUS_MIMETYPE = "audio/ogg; codecs=opus"

# The families of content type each kind accepts; a document takes anything.
_ACCEPTED = {
    "image": ("image/",),
    "video": ("video/",),
    "audio": ("audio/", "video/ogg", "application/ogg"),
    "sticker": ("image/",),
}
_DEFAULT_MIMETYPE = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/mpeg",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}


def missing_media_tools() -> list[str]:
    """The media tools not on the PATH (empty when ffmpeg and ffprobe are both there)."""
    return [tool for tool in MEDIA_TOOLS if shutil.which(tool) is None]


def require_media_tools(why: str) -> None:
    missing = missing_media_tools()
    if missing:
        raise MediaToolsMissing(f"{why} needs {' and '.join(missing)} on the PATH of the session-host")


@dataclass(frozen=True, slots=True)
class MediaBytes:
    data: bytes
    mimetype: str


def _check_type(kind: str, mimetype: str) -> None:
    accepted = _ACCEPTED.get(kind)
    base = mimetype.split(";", 1)[0].strip().lower()
    if accepted is not None and not base.startswith(accepted):
        raise InvalidContent(f"{kind} media must be {' or '.join(accepted)}*, got {base or 'no type'}")


def decode_base64(data_base64: str) -> bytes:
    try:
        return base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidContent(f"data_base64 is not valid base64: {exc}") from exc


async def fetch(url: str, http: httpx.AsyncClient, max_bytes: int = MAX_MEDIA_BYTES) -> MediaBytes:
    """Download `url` with a size cap. 4xx and oversize are permanent, network trouble and 5xx transient."""
    try:
        async with http.stream("GET", url, follow_redirects=True, timeout=FETCH_TIMEOUT) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientSendError(f"media URL answered {response.status_code}")
            if response.status_code >= 400:
                raise InvalidContent(f"media URL answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidContent(f"media is {declared} bytes, more than the {max_bytes} allowed")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise InvalidContent(f"media is more than the {max_bytes} bytes allowed")
                chunks.append(chunk)
            mimetype = response.headers.get("content-type", "").split(";", 1)[0].strip()
            return MediaBytes(b"".join(chunks), mimetype)
    except httpx.HTTPError as exc:
        raise TransientSendError(f"media download failed: {exc!r}") from exc


async def load_media(
    content: MediaBody, http: httpx.AsyncClient, max_bytes: int = MAX_MEDIA_BYTES
) -> MediaBytes:
    """The bytes and content type of a media send; the content's own `mimetype` wins over the server's."""
    if content.data_base64 is not None:
        data = decode_base64(content.data_base64)
        if len(data) > max_bytes:
            raise InvalidContent(f"media is {len(data)} bytes, more than the {max_bytes} allowed")
        fetched_type = ""
    elif content.url is not None:
        got = await fetch(content.url, http, max_bytes)
        data, fetched_type = got.data, got.mimetype
    else:
        raise InvalidContent("sending media needs url or data_base64")
    if not data:
        raise InvalidContent("media is empty")
    mimetype = content.mimetype or fetched_type or _DEFAULT_MIMETYPE[content.type]
    _check_type(content.type, mimetype)
    return MediaBytes(data, mimetype)


async def _run(*args: str, stdin: bytes | None = None) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), FFMPEG_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise InvalidContent(f"{args[0]} took more than {FFMPEG_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise InvalidContent(f"{args[0]} could not read the media: {err.decode(errors='replace')[-300:]}")
    return out


async def _with_file(data: bytes, suffix: str) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    tmp = tempfile.TemporaryDirectory(prefix="zaphub-media-")
    path = Path(tmp.name) / f"in{suffix}"
    await asyncio.to_thread(path.write_bytes, data)
    return tmp, path


async def probe_seconds(data: bytes) -> int:
    tmp, path = await _with_file(data, ".bin")
    try:
        out = await _run(
            "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)
        )
    finally:
        await asyncio.to_thread(tmp.cleanup)
    try:
        return max(0, round(float(out.decode().strip() or 0)))
    except ValueError:
        return 0


async def to_voice_note(media: MediaBytes) -> tuple[MediaBytes, int]:
    """ogg/opus mono, as WhatsApp plays voice notes, and its length in seconds."""
    require_media_tools("a voice note")
    tmp, path = await _with_file(media.data, ".in")
    try:
        out = await _run(
            "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", "48000",
            "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "pipe:1",
        )  # fmt: skip
    finally:
        await asyncio.to_thread(tmp.cleanup)
    converted = MediaBytes(out, OPUS_MIMETYPE)
    return converted, await probe_seconds(out)


async def to_sticker(media: MediaBytes) -> MediaBytes:
    """A 512x512 webp; a webp is sent as given, anything else needs ffmpeg."""
    if media.mimetype.split(";", 1)[0].strip().lower() == "image/webp":
        return media
    require_media_tools("a sticker that is not webp")
    tmp, path = await _with_file(media.data, ".in")
    try:
        out = await _run(
            "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf",
            "scale=512:512:force_original_aspect_ratio=decrease,"
            "pad=512:512:(ow-iw)/2:(oh-ih)/2:color=0x00000000",
            "-vcodec", "libwebp", "-loop", "0", "-an", "-f", "webp", "pipe:1",
        )  # fmt: skip
    finally:
        await asyncio.to_thread(tmp.cleanup)
    return MediaBytes(out, "image/webp")


async def video_thumbnail(data: bytes) -> tuple[bytes | None, int]:
    """A small JPEG of the first second and the length, when ffmpeg is there; (None, 0) otherwise."""
    if missing_media_tools():
        return None, 0
    tmp, path = await _with_file(data, ".in")
    try:
        thumb = await _run(
            "ffmpeg", "-nostdin", "-v", "error", "-ss", "0", "-i", str(path), "-frames:v", "1",
            "-vf", "scale=72:-2", "-f", "mjpeg", "pipe:1",
        )  # fmt: skip
    except InvalidContent:
        thumb = b""
    finally:
        await asyncio.to_thread(tmp.cleanup)
    return (thumb or None), await probe_seconds(data)

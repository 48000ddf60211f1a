"""Media for sends: bytes from `data_base64` or an http(s) URL, and the ffmpeg/ffprobe steps WhatsApp
needs (voice notes in ogg/opus, stickers in webp, video thumbnails).

A URL is fetched through the egress policy by media_fetch.py, which the simulator shares.

The content type of fetched media is the server's: it must fit the message kind (an image is
image/*, ...), and the tenant's `mimetype` is only used when it names the same type or the server
gave none. ffmpeg reads untrusted bytes, so it runs with `-protocol_whitelist file,pipe`, an explicit
input demuxer chosen from that validated type (never a playlist or concat demuxer), and a deadline
at which the process is killed.
"""

import asyncio
import base64
import binascii
import logging
import shutil
import tempfile
from pathlib import Path

from zaphub_contracts.content import (
    AudioContent,
    DocumentContent,
    ImageContent,
    StickerContent,
    VideoContent,
)
from zaphub_runtime.egress import EgressClient
from zaphub_session_host.media_fetch import MAX_MEDIA_BYTES, MediaBytes, fetch
from zaphub_session_host.transport.base import InvalidContent, MediaToolsMissing

log = logging.getLogger(__name__)

MediaBody = ImageContent | VideoContent | AudioContent | DocumentContent | StickerContent

FFMPEG_TIMEOUT = 120.0
MEDIA_TOOLS = ("ffmpeg", "ffprobe")
OPUS_MIMETYPE = "audio/ogg; codecs=opus"
# ffmpeg may open only the temporary input file and its own stdout: no http, tcp, data or concat.
PROTOCOL_WHITELIST = ("-protocol_whitelist", "file,pipe")

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
# The ffmpeg demuxer for each content type it may read; a type not here is not given to ffmpeg.
DEMUXERS = {
    "image/jpeg": "jpeg_pipe",
    "image/png": "png_pipe",
    "image/gif": "gif",
    "image/webp": "webp_pipe",
    "image/bmp": "bmp_pipe",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "video/ogg": "ogg",
    "application/ogg": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/aac": "aac",
    "audio/flac": "flac",
    "audio/amr": "amr",
    "audio/mp4": "mov",
    "audio/x-m4a": "mov",
    "audio/m4a": "mov",
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "audio/webm": "matroska",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/mpeg": "mpeg",
    "video/x-msvideo": "avi",
}


def base_type(mimetype: str) -> str:
    return mimetype.split(";", 1)[0].strip().lower()


def demuxer(mimetype: str) -> str:
    """ffmpeg's input format for `mimetype`, or InvalidContent: ffmpeg never guesses the format of
    untrusted bytes (a guess could pick the hls or concat demuxer, which open other URLs)."""
    found = DEMUXERS.get(base_type(mimetype))
    if found is None:
        raise InvalidContent(f"media of type {base_type(mimetype) or 'none'} cannot be converted")
    return found


def missing_media_tools() -> list[str]:
    """The media tools not on the PATH (empty when ffmpeg and ffprobe are both there)."""
    return [tool for tool in MEDIA_TOOLS if shutil.which(tool) is None]


def require_media_tools(why: str) -> None:
    missing = missing_media_tools()
    if missing:
        raise MediaToolsMissing(f"{why} needs {' and '.join(missing)} on the PATH of the session-host")


def _check_type(kind: str, mimetype: str) -> None:
    accepted = _ACCEPTED.get(kind)
    base = base_type(mimetype)
    if accepted is not None and not base.startswith(accepted):
        raise InvalidContent(f"{kind} media must be {' or '.join(accepted)}*, got {base or 'no type'}")


def decode_base64(data_base64: str) -> bytes:
    try:
        return base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidContent(f"data_base64 is not valid base64: {exc}") from exc


async def load_media(content: MediaBody, http: EgressClient, max_bytes: int = MAX_MEDIA_BYTES) -> MediaBytes:
    """The bytes and content type of a media send. Fetched media keeps the server's type (it must fit
    the kind); the content's `mimetype` refines it only when it names the same type (adds codecs) or
    the server gave none. Inline bytes take the content's `mimetype`, else the kind's default."""
    if content.data_base64 is not None:
        data = decode_base64(content.data_base64)
        if len(data) > max_bytes:
            raise InvalidContent(f"media is {len(data)} bytes, more than the {max_bytes} allowed")
        mimetype = content.mimetype or _DEFAULT_MIMETYPE[content.type]
    elif content.url is not None:
        got = await fetch(content.url, http, max_bytes)
        data, fetched = got.data, got.mimetype
        generic = fetched in ("", "application/octet-stream", "binary/octet-stream")
        if content.mimetype and (generic or base_type(content.mimetype) == fetched):
            mimetype = content.mimetype
        else:
            mimetype = fetched or _DEFAULT_MIMETYPE[content.type]
    else:
        raise InvalidContent("sending media needs url or data_base64")
    if not data:
        raise InvalidContent("media is empty")
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
        raise InvalidContent(f"{args[0]} took more than {FFMPEG_TIMEOUT:g} s") from None
    finally:
        if proc.returncode is None:  # the deadline passed or the send was cancelled: never leave it running
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        log.info("%s failed: %s", args[0], err.decode(errors="replace")[-300:])
        raise InvalidContent(f"{args[0]} could not read the media")
    return out


async def _with_file(data: bytes, suffix: str) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    tmp = tempfile.TemporaryDirectory(prefix="zaphub-media-")
    path = Path(tmp.name) / f"in{suffix}"
    await asyncio.to_thread(path.write_bytes, data)
    return tmp, path


def _input(mimetype: str, path: Path) -> tuple[str, ...]:
    """The input arguments of ffmpeg/ffprobe: local file only, the demuxer the type names."""
    return (*PROTOCOL_WHITELIST, "-f", demuxer(mimetype), "-i", f"file:{path}")


async def probe_seconds(data: bytes, mimetype: str) -> int:
    tmp, path = await _with_file(data, ".bin")
    try:
        out = await _run(
            "ffprobe", "-v", "error", *_input(mimetype, path),
            "-show_entries", "format=duration", "-of", "csv=p=0",
        )  # fmt: skip
    finally:
        await asyncio.to_thread(tmp.cleanup)
    try:
        return max(0, round(float(out.decode().strip() or 0)))
    except ValueError:
        return 0


async def to_voice_note(media: MediaBytes) -> tuple[MediaBytes, int]:
    """ogg/opus mono, as WhatsApp plays voice notes, and its length in seconds."""
    require_media_tools("a voice note")
    demuxer(media.mimetype)  # refuse an unreadable type before anything is written
    tmp, path = await _with_file(media.data, ".in")
    try:
        out = await _run(
            "ffmpeg", "-nostdin", "-v", "error", *_input(media.mimetype, path), "-vn", "-ac", "1",
            "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "pipe:1",
        )  # fmt: skip
    finally:
        await asyncio.to_thread(tmp.cleanup)
    converted = MediaBytes(out, OPUS_MIMETYPE)
    return converted, await probe_seconds(out, OPUS_MIMETYPE)


async def to_sticker(media: MediaBytes) -> MediaBytes:
    """A 512x512 webp; a webp is sent as given, anything else needs ffmpeg."""
    if base_type(media.mimetype) == "image/webp":
        return media
    require_media_tools("a sticker that is not webp")
    demuxer(media.mimetype)
    tmp, path = await _with_file(media.data, ".in")
    try:
        out = await _run(
            "ffmpeg", "-nostdin", "-v", "error", *_input(media.mimetype, path), "-vf",
            "scale=512:512:force_original_aspect_ratio=decrease,"
            "pad=512:512:(ow-iw)/2:(oh-ih)/2:color=0x00000000",
            "-vcodec", "libwebp", "-loop", "0", "-an", "-f", "webp", "pipe:1",
        )  # fmt: skip
    finally:
        await asyncio.to_thread(tmp.cleanup)
    return MediaBytes(out, "image/webp")


async def video_thumbnail(media: MediaBytes) -> tuple[bytes | None, int]:
    """A small JPEG of the first second and the length, when ffmpeg is there and can read the type;
    (None, 0) otherwise."""
    if missing_media_tools() or base_type(media.mimetype) not in DEMUXERS:
        return None, 0
    tmp, path = await _with_file(media.data, ".in")
    try:
        thumb = await _run(
            "ffmpeg", "-nostdin", "-v", "error", "-ss", "0", *_input(media.mimetype, path),
            "-frames:v", "1", "-vf", "scale=72:-2", "-f", "mjpeg", "pipe:1",
        )  # fmt: skip
        seconds = await probe_seconds(media.data, media.mimetype)
    except InvalidContent:
        thumb, seconds = b"", 0
    finally:
        await asyncio.to_thread(tmp.cleanup)
    return (thumb or None), seconds

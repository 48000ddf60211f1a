"""Link previews for sends (`"link_preview": true` on a text): the first http(s) URL of the text, read
through the egress policy, becomes the title, description and thumbnail the message shows.

The read is small and bounded: only an HTML answer is read, and only its first `PAGE_MAX_BYTES` (the
head, where the OpenGraph tags and `<title>` are); the thumbnail only if it is an image type, at most
`IMAGE_MAX_BYTES`, re-encoded here as a small JPEG; redirects are followed a few times, each checked
by the policy; everything within `DEADLINE` seconds. Any failure or refusal means no preview, never a
failed send: the text goes out without one.
"""

import asyncio
import base64
import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

from PIL import Image

from zaphub_contracts.content import LinkPreview, TextContent
from zaphub_runtime.egress import EgressClient, EgressError, EgressResponse

log = logging.getLogger(__name__)

PAGE_MAX_BYTES = 128 * 1024
IMAGE_MAX_BYTES = 1024 * 1024
IMAGE_MAX_PIXELS = 25_000_000  # a decompression bomb is refused before it is decoded
THUMBNAIL_SIDE = 256
THUMBNAIL_QUALITY = 70
DEADLINE = 5.0  # page and thumbnail together
REDIRECTS = 3
MAX_TITLE = 256
MAX_DESCRIPTION = 1024
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})

_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
_SPACE = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def first_url(text: str) -> str | None:
    """The first http(s) URL in `text`, without the punctuation that ends a sentence after it."""
    match = _URL.search(text)
    if match is None:
        return None
    url = match.group(0).rstrip(_TRAILING)
    return url if "://" in url and len(url) <= 4096 else None


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What a page's head says about it."""

    title: str | None = None
    description: str | None = None
    image: str | None = None  # absolute http(s) URL


class _HeadScan(HTMLParser):
    """Collects `<title>` and the OpenGraph, Twitter and description `<meta>` tags until the body."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title: list[str] = []
        self._in_title = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "body":
            self.done = True
        elif tag == "title":
            self._in_title = True
        elif tag == "meta":
            values = {k.lower(): v for k, v in attrs if v is not None}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content")
            if key and content is not None and key not in self.meta:
                self.meta[key] = content

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.done and sum(map(len, self.title)) < 4 * MAX_TITLE:
            self.title.append(data)


def _clean(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = _SPACE.sub(" ", value).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def _charset(content_type_header: str, body: bytes) -> str:
    for part in content_type_header.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    found = _META_CHARSET.search(body[:4096])
    return found.group(1).decode("ascii") if found else "utf-8"


def extract(body: bytes, base_url: str, content_type_header: str = "") -> PageMeta:
    """The title, description and image URL of an HTML page (or its head, cut anywhere)."""
    try:
        text = body.decode(_charset(content_type_header, body), errors="replace")
    except LookupError:  # a charset Python does not know
        text = body.decode("utf-8", errors="replace")
    scan = _HeadScan()
    try:
        scan.feed(text)
        scan.close()
    except AssertionError:  # html.parser's reaction to some malformed markup: keep what was seen
        pass
    meta = scan.meta

    def first(*keys: str) -> str | None:
        return next((meta[k] for k in keys if meta.get(k, "").strip()), None)

    image = first("og:image:secure_url", "og:image:url", "og:image", "twitter:image", "twitter:image:src")
    if image is not None:
        image = urljoin(base_url, image.strip())
        if not image.lower().startswith(("http://", "https://")):
            image = None
    return PageMeta(
        title=_clean(first("og:title", "twitter:title") or "".join(scan.title), MAX_TITLE),
        description=_clean(first("og:description", "twitter:description", "description"), MAX_DESCRIPTION),
        image=image,
    )


def thumbnail(data: bytes) -> bytes | None:
    """A JPEG of at most THUMBNAIL_SIDE pixels a side, or None when `data` is not an image Pillow
    can read within the pixel limit. CPU work: call it in a thread."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in {"JPEG", "PNG", "WEBP", "GIF"}:
                return None
            width, height = image.size
            if width * height > IMAGE_MAX_PIXELS or not width or not height:
                return None
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # JPEG: decode at a reduced size
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=THUMBNAIL_QUALITY)
            return out.getvalue()
    except Exception:  # Pillow raises many kinds on hostile bytes; a broken image is no thumbnail
        return None


class LinkPreviews:
    """Builds the preview of a text send, through this host's egress client."""

    def __init__(
        self,
        http: EgressClient,
        *,
        page_max_bytes: int = PAGE_MAX_BYTES,
        image_max_bytes: int = IMAGE_MAX_BYTES,
        deadline: float = DEADLINE,
    ) -> None:
        self._http = http
        self._page_max_bytes = page_max_bytes
        self._image_max_bytes = image_max_bytes
        self._deadline = deadline

    async def attach(self, content: TextContent) -> TextContent:
        """`content` with its preview, when it asks for one and one could be made; else as it is."""
        if not content.link_preview or content.preview is not None:
            return content
        preview = await self.preview(content.text)
        return content if preview is None else content.model_copy(update={"preview": preview})

    async def preview(self, text: str) -> LinkPreview | None:
        url = first_url(text)
        if url is None:
            return None
        loop = asyncio.get_running_loop()
        ends = loop.time() + self._deadline
        try:
            page = await self._http.fetch(
                url,
                max_bytes=self._page_max_bytes,
                deadline=self._deadline,
                follow_redirects=REDIRECTS,
                headers={"Accept": "text/html,application/xhtml+xml"},
                content_types=HTML_TYPES,
                cut=True,
            )
        except EgressError as exc:
            log.info("no link preview: %s", exc.reason)
            return None
        if not 200 <= page.status < 300:
            log.info("no link preview: the page answered %s", page.status)
            return None
        meta = extract(page.body, page.url, page.headers.get("content-type", ""))
        if meta.title is None and meta.description is None:
            return None
        jpeg = await self._thumbnail(meta.image, ends - loop.time()) if meta.image else None
        return LinkPreview(
            url=url,
            title=meta.title,
            description=meta.description,
            thumbnail_base64=base64.b64encode(jpeg).decode() if jpeg else None,
        )

    async def _thumbnail(self, url: str, left: float) -> bytes | None:
        if left <= 0.1:
            return None
        try:
            image: EgressResponse = await self._http.fetch(
                url,
                max_bytes=self._image_max_bytes,
                deadline=left,
                follow_redirects=REDIRECTS,
                content_types=IMAGE_TYPES,
            )
        except EgressError as exc:
            log.info("link preview without a thumbnail: %s", exc.reason)
            return None
        if not 200 <= image.status < 300 or not image.body:
            return None
        return await asyncio.to_thread(thumbnail, image.body)

"""Media bytes of the simulator's own, for media a simulated contact sends without bytes (by URL, or
by nothing at all in `simulate`): a small generated image, audio, video, document or sticker."""

import base64
import io
import math
import wave

# A 4x4 PNG: red, green, blue and white quadrants.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAGElEQVR4nGP4z8AARAz/kRCMAtMQgMIBAO5TF+nsKTSDAAAAAElFTkSuQmCC"
)


def _wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A short 440 Hz tone, 8-bit mono WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        frames = bytes(
            int(128 + 100 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


_GENERATED: dict[str, tuple[bytes, str]] = {
    "image": (PNG, "image/png"),
    "sticker": (PNG, "image/png"),
    "audio": (_wav(), "audio/wav"),
    "video": (PNG, "image/png"),  # a still is enough for a demo
    "document": (PDF, "application/pdf"),
}


def generated(kind: str) -> tuple[bytes, str]:
    """Bytes and mimetype the simulator serves for a media message of type `kind`."""
    return _GENERATED.get(kind, _GENERATED["document"])

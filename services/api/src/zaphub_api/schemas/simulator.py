"""REST models of the simulator's `simulate` route: a simulated contact acting on a session."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zaphub_api.schemas.phones import normalise_recipient
from zaphub_contracts.host import SimulateAction

MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}
OWN_MEDIA_URL = "https://simulator.invalid/own-media"


class SimulateCreate(BaseModel):
    """What the contact `from` does. Each action needs its fields:

    - `message`: `content` (any message content; media without bytes gets the simulator's own);
    - `reaction`: `message_id` (WhatsApp id) and `emoji` (empty removes it);
    - `receipt`: `message_id` of a message the session sent this contact, `receipt` delivered/read;
    - `edit` (`message_id`, `text`), `revoke` (`message_id`), `poll_vote` (`message_id` of the poll,
      `options`), `typing` (`state`);
    - `history_sync`: `history`, the chat's older messages (`{from_me, content, at}`, oldest first), as
      WhatsApp's history sync after pairing brings them: imported, not sent to webhooks.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: SimulateAction
    sender: str = Field(
        alias="from", description="The contact: E.164 number (+5511…) or JID", examples=["+5521987650001"]
    )
    push_name: str | None = Field(default=None, max_length=256, description="The contact's WhatsApp name")
    content: dict[str, Any] | None = Field(
        default=None,
        description="Any message content (`{type: text, text}`, `{type: image, caption}`, ...); media "
        "needs no `url` or `data_base64`: the simulator serves bytes of its own",
    )
    message_id: str | None = Field(default=None, max_length=128, description="WhatsApp id acted on")
    emoji: str | None = Field(default=None, max_length=32)
    text: str | None = Field(default=None, min_length=1, max_length=65536)
    options: list[str] = Field(default_factory=list, max_length=32)
    state: Literal["composing", "recording", "paused"] = "composing"
    receipt: Literal["delivered", "read"] = "read"
    history: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=1000,
        description="history_sync: `[{from_me, content, at}]`, oldest first",
    )

    _sender = field_validator("sender")(lambda v: normalise_recipient(v))

    def contract_content(self) -> dict[str, Any] | None:
        """`content` with a media source the contract accepts: the simulator fetches nothing, it
        serves its own bytes for media given by URL or not at all."""
        content: dict[str, Any] | None = _with_source(self.content)
        return content

    def contract_history(self) -> list[dict[str, Any]]:
        """`history` with each entry's content given a media source, like `content`."""
        return [{**e, "content": _with_source(e.get("content"))} for e in self.history]


def _with_source(content: Any) -> Any:
    if not isinstance(content, dict) or content.get("type") not in MEDIA_TYPES:
        return content
    if content.get("url") or content.get("data_base64"):
        return content
    return {**content, "url": OWN_MEDIA_URL}


class SimulateAccepted(BaseModel):
    session_id: str
    action: SimulateAction
    whatsapp_id: str | None = Field(default=None, description="WhatsApp id of the message the contact sent")

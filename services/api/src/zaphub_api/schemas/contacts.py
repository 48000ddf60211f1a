"""REST models of contacts: the on-WhatsApp check, profiles and the blocklist."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zaphub_api.schemas.phones import normalise_phone
from zaphub_contracts.host import MAX_CHECK


class ContactsCheckCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"numbers": ["+5511999998888", "+999123456"]}]}
    )

    numbers: list[str] = Field(
        min_length=1,
        max_length=MAX_CHECK,
        description=f"E.164 numbers, at most {MAX_CHECK}",
        examples=[["+5511999998888", "+999123456"]],
    )

    @field_validator("numbers")
    @classmethod
    def _phones(cls, values: list[str]) -> list[str]:
        return [normalise_phone(v) for v in values]


class ContactCheckRead(BaseModel):
    number: str = Field(description="The number checked, E.164", examples=["+5511999998888"])
    on_whatsapp: bool
    jid: str | None = Field(default=None, description="Phone JID, when on WhatsApp")
    lid: str | None = Field(default=None, description="LID, when known")


class ContactRead(BaseModel):
    jid: str = Field(description="Phone JID", examples=["5511999998888@s.whatsapp.net"])
    lid: str | None = Field(default=None, examples=["123456789012345@lid"])
    name: str | None = Field(default=None, description="Address-book name, business name or push name")
    push_name: str | None = None
    about: str | None = Field(default=None, description="Status text; only on a single contact")
    business: bool = False
    business_name: str | None = None
    picture_url: str | None = Field(default=None, description="Profile picture URL; only on a single contact")


class BlocklistRead(BaseModel):
    jids: list[str] = Field(description="The blocked JIDs", examples=[["5511999998888@s.whatsapp.net"]])

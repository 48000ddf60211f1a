"""Phone numbers and WhatsApp JIDs as clients write them, validated and normalised."""

import re

_PHONE = re.compile(r"^\+?[1-9]\d{6,14}$")
_JID = re.compile(r"^[0-9]{5,20}(@s\.whatsapp\.net|@g\.us|@lid)$|^[0-9]{5,20}-[0-9]{5,12}@g\.us$")
_FORMATTING = re.compile(r"[\s().-]")
PHONE_HINT = "must be an E.164 phone number such as +5511999998888"


def normalise_phone(value: str) -> str:
    """E.164 number with or without +, spaces, dashes or parentheses, as its digits."""
    compact = _FORMATTING.sub("", value)
    if not _PHONE.match(compact):
        raise ValueError(PHONE_HINT)
    return compact.lstrip("+")


def normalise_recipient(value: str) -> str:
    """E.164 number or a WhatsApp JID, as a JID."""
    if _JID.match(value):
        return value
    try:
        return normalise_phone(value) + "@s.whatsapp.net"
    except ValueError:
        raise ValueError(PHONE_HINT + ", or a WhatsApp JID") from None


def normalise_contact(value: str) -> str:
    """E.164 number, user JID or LID, as a JID; groups are not contacts."""
    jid = normalise_recipient(value)
    if jid.endswith("@g.us"):
        raise ValueError("must be a person (E.164 number, user JID or LID), not a group")
    return jid

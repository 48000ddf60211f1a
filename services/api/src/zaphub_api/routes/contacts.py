"""Tenant routes of a session's contacts: which numbers are on WhatsApp, the contacts and profiles
the linked account knows, and its blocklist. Each is a host request to the session's owner: 409 while
the session is not connected, 503 with Retry-After when no host answers in time."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import problem_responses
from zaphub_api.schemas.contacts import BlocklistRead, ContactCheckRead, ContactRead, ContactsCheckCreate
from zaphub_api.services.contacts import ContactService
from zaphub_contracts.host import BlocklistChange, Contact

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
JID = Annotated[str, Parameter(description="E.164 number, user JID or LID", max_length=64)]


def to_read(contact: Contact) -> ContactRead:
    return ContactRead(**contact.model_dump())


class ContactController(Controller):
    path = "/api/v1/sessions/{session_id:uuid}"
    tags = ["contacts"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/contacts/check",
        status_code=200,
        summary="Which numbers are on WhatsApp (up to 50), with their JID and LID",
        description="Answers are cached for a minute per session. 409 while the session is not "
        "connected; 503 with Retry-After when no session-host answers in time.",
        responses=problem_responses(409, 503),
    )
    async def check(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[ContactsCheckCreate],
        contact_service: NamedDependency[ContactService],
    ) -> list[ContactCheckRead]:
        results = await contact_service.check(tenant_id, session_id, data.numbers)
        return [
            ContactCheckRead(number=f"+{r.number}", on_whatsapp=r.on_whatsapp, jid=r.jid, lid=r.lid)
            for r in results
        ]

    @get(
        "/contacts",
        summary="The contacts the linked account knows",
        responses=problem_responses(409, 503),
    )
    async def list_contacts(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        contact_service: NamedDependency[ContactService],
    ) -> list[ContactRead]:
        return [to_read(c) for c in await contact_service.contacts(tenant_id, session_id)]

    @get(
        "/contacts/{jid:str}",
        summary="One contact's profile: name, about, business flag, picture URL, phone JID and LID",
        description="404 `not-on-whatsapp` when the number has no account.",
        responses=problem_responses(409, 503),
    )
    async def get_contact(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        jid: JID,
        contact_service: NamedDependency[ContactService],
    ) -> ContactRead:
        return to_read(await contact_service.contact(tenant_id, session_id, jid))

    @get("/blocklist", summary="The JIDs the account has blocked", responses=problem_responses(409, 503))
    async def blocklist(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        contact_service: NamedDependency[ContactService],
    ) -> BlocklistRead:
        return BlocklistRead(jids=await contact_service.blocklist(tenant_id, session_id))

    @put(
        "/blocklist/{jid:str}",
        summary="Block a contact; answers the blocklist after the change",
        responses=problem_responses(409, 503),
    )
    async def block(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        jid: JID,
        contact_service: NamedDependency[ContactService],
    ) -> BlocklistRead:
        change = BlocklistChange.BLOCK
        return BlocklistRead(jids=await contact_service.update_blocklist(tenant_id, session_id, jid, change))

    @delete(
        "/blocklist/{jid:str}",
        status_code=200,
        summary="Unblock a contact; answers the blocklist after the change",
        responses=problem_responses(409, 503),
    )
    async def unblock(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        jid: JID,
        contact_service: NamedDependency[ContactService],
    ) -> BlocklistRead:
        change = BlocklistChange.UNBLOCK
        return BlocklistRead(jids=await contact_service.update_blocklist(tenant_id, session_id, jid, change))

"""Tenant isolation over every route of the OpenAPI document, so routes added later are covered too."""

import re
import uuid
from typing import Any

Api = Any  # the `api` fixture of conftest.py

PUBLIC = re.compile(r"^/(health|ready|metrics)$|^/docs|^/swagger|^/schema")
PARAM = re.compile(r"\{(\w+)\}")
# Routes both keys may call, each with its own view (the admin's installation, the tenant's own).
BOTH_KEYS = {"GET /api/v1/sessions/stats"}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        if not PUBLIC.match(path)
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def example(node: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A small valid value for a JSON Schema node, so that bodies pass validation and reach the lookup."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return example(schema["components"]["schemas"][name], schema)
    for key in ("const", "default"):
        if key in node and node[key] is not None:
            return node[key]
    if node.get("examples"):
        return node["examples"][0]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("oneOf", "anyOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"]
            return example(options[0], schema)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    formats = {
        "uuid": str(uuid.uuid4()),
        "uri": "https://example.com/hook",
        "date-time": "2030-01-01T00:00:00Z",
    }
    match kind:
        case "object":
            props = node.get("properties", {})
            return {k: example(props[k], schema) for k in node.get("required", [])}
        case "array":
            return [example(node.get("items", {}), schema) for _ in range(node.get("minItems", 0))]
        case "integer" | "number":
            return node.get("minimum", 1)
        case "boolean":
            return False
        case "string":
            return formats.get(node.get("format", ""), "x" * max(1, node.get("minLength", 1)))
    return None


def body_of(op: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Request arguments with a schema-valid body: JSON, or form fields and files for multipart."""
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return {"json": example(content["application/json"]["schema"], schema)}
    if "multipart/form-data" in content:
        node = content["multipart/form-data"]["schema"]
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node
        props = node.get("properties", {})
        files = {
            k: ("f.png", b"\x89PNG\r\n\x1a\n", "image/png")
            for k, v in props.items()
            if v.get("format") == "binary"
        }
        fields = {k: example(props[k], schema) for k in node.get("required", []) if k not in files}
        return {"data": fields, "files": files}
    return {}


def is_stream(op: dict[str, Any]) -> bool:
    """A Server-Sent Events route: its body never ends, so the walk checks only its 401 and 403."""
    documented = any("text/event-stream" in r.get("content", {}) for r in op.get("responses", {}).values())
    return documented or "Server-Sent Events" in op.get("summary", "") + op.get("description", "")


async def call(api: Api, method: str, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await api.client.request(method, path, headers=headers, timeout=10, **body)


async def test_every_route_needs_a_key_and_hides_other_tenants(api: Api) -> None:
    """Every route: no key → 401; another tenant's key on the first tenant's ids → 404 and none of its
    data; a tenant key on an admin route → 403 (and the admin key on a tenant route → 403)."""
    alice_tenant, alice = await api.tenant("alice")
    _, bob = await api.tenant("bob")
    session = await api.session(alice, name="alice-secret-session")
    sent = await api.client.post(
        f"/api/v1/sessions/{session['id']}/messages",
        json={"to": "+5511999998888", "type": "text", "text": "alice-secret-text"},
        headers=alice,
    )
    assert sent.status_code == 202
    keys = (await api.client.get(f"/api/v1/tenants/{alice_tenant['id']}/api-keys", headers=api.admin)).json()
    ids = {
        "session_id": session["id"],
        "message_id": sent.json()["id"],
        "tenant_id": alice_tenant["id"],
        "key_id": keys[0]["id"],
    }
    webhook = await api.client.post(
        "/api/v1/webhooks", json={"url": "https://example.com/hook"}, headers=alice
    )
    if webhook.status_code == 201:
        ids["webhook_id"] = webhook.json()["id"]
    secrets = [
        session["id"],
        sent.json()["id"],
        alice_tenant["id"],
        "alice-secret-session",
        "alice-secret-text",
        alice_tenant["api_key"],
    ]
    schema = (await api.client.get("/docs/openapi.json")).json()
    ops = operations(schema)
    assert len(ops) >= 20, "the walk must see the whole API"
    for method, template, op in ops:
        params = PARAM.findall(template)
        path = PARAM.sub(lambda m: ids.get(m.group(1), str(uuid.uuid4())), template)
        where = f"{method} {template}"
        body = body_of(op, schema)

        response = await call(api, method, path, {}, body)
        assert response.status_code == 401, (where, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), where

        as_admin = await call(api, method, PARAM.sub(lambda _: str(uuid.uuid4()), template), api.admin, body)
        admin_route = as_admin.status_code != 403 and where not in BOTH_KEYS
        if admin_route:
            response = await call(api, method, path, bob, body)
            assert response.status_code == 403, (where, response.status_code, response.text)
            continue
        if is_stream(op) and not params:
            continue  # a stream never ends; its 401 and 403 were checked above
        response = await call(api, method, path, bob, body)
        if params:
            assert response.status_code == 404, (where, response.status_code, response.text)
        else:
            assert response.status_code not in (401, 403), (where, response.status_code)
        leaked = [s for s in secrets if s in response.text and s not in path]
        assert not leaked, (where, leaked)


ADMIN_CONTROLLERS = {"TenantController", "HostController"}
ROUTE_PARAM = re.compile(r"\{(\w+):\w+\}")


async def test_every_handler_of_an_admin_controller_refuses_a_tenant_key(api: Api) -> None:
    """Walking the app's routes: each handler an admin controller holds (one added later too, as the
    guard sits on the controller) answers a tenant key with 403 and no key with 401, and the admin
    key gets past the guard."""
    _, tenant = await api.tenant("carol")
    checked = []
    for route in api.client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.fn.__qualname__.partition(".")[0] not in ADMIN_CONTROLLERS:
                continue
            path = ROUTE_PARAM.sub(lambda _: str(uuid.uuid4()), route.path)
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                where = f"{method} {route.path}"
                as_tenant = await api.client.request(method, path, headers=tenant, json={})
                assert as_tenant.status_code == 403, (where, as_tenant.text)
                assert as_tenant.json()["type"].endswith("/forbidden"), where
                anonymous = await api.client.request(method, path, json={})
                assert anonymous.status_code == 401, (where, anonymous.text)
                as_admin = await api.client.request(method, path, headers=api.admin, json={})
                assert as_admin.status_code not in (401, 403), (where, as_admin.text)
                checked.append(where)
    assert {"GET /api/v1/hosts", "POST /api/v1/tenants", "DELETE /api/v1/tenants/{tenant_id:uuid}"} <= set(
        checked
    )

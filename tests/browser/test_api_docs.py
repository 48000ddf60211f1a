"""The interactive API docs render in a browser that cannot reach anything but this machine."""

from playwright.async_api import Page, Response, expect

from zaphub_devstack.testing import Stack

# The summary of POST /api/v1/sessions/{id}/messages (routes/messages.py).
SEND_SUMMARY = "Queue a message for sending; its status moves queued → sent → delivered → read"
# The bundles parse several MB of script first: more than Playwright's 5 s on a busy CI machine.
RENDERED_WITHIN_MS = 30_000


def failed_responses(page: Page) -> list[str]:
    """The responses of `page` from now on that were errors, as `status url`."""
    failed: list[str] = []

    def record(response: Response) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    page.on("response", record)
    return failed


async def test_scalar_docs_show_the_operations_offline(
    api_stack: Stack, page: Page, outside_requests: list[str]
) -> None:
    """/docs (Scalar) lists the tags and, opened, the send operation, asking no other host for anything."""
    failed = failed_responses(page)
    await page.goto(f"{api_stack.api_url}/docs")
    sessions = page.get_by_role("link", name="sessions", exact=True)
    await expect(sessions).to_be_visible(timeout=RENDERED_WITHIN_MS)
    await page.get_by_role("link", name="messages", exact=True).click()
    await expect(page.get_by_text(SEND_SUMMARY, exact=True).first).to_be_visible()
    await page.wait_for_load_state("networkidle")  # fonts and late requests have been asked for
    assert outside_requests == []
    assert failed == []


async def test_swagger_docs_show_the_operations_offline(
    api_stack: Stack, page: Page, outside_requests: list[str]
) -> None:
    """/docs/swagger (Swagger UI) shows the sessions tag and the send operation, asking no other host."""
    failed = failed_responses(page)
    await page.goto(f"{api_stack.api_url}/docs/swagger")
    sessions = page.get_by_role("link", name="sessions", exact=True)
    await expect(sessions).to_be_visible(timeout=RENDERED_WITHIN_MS)
    await expect(page.get_by_text(SEND_SUMMARY, exact=True)).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert outside_requests == []
    assert failed == []

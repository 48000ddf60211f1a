"""The docs pages load nothing from elsewhere: every script, stylesheet and font comes from this API."""

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

Api = Any  # the `api` fixture of conftest.py

PAGES = ("/docs", "/docs/swagger")

# An absolute or protocol-relative URL's host.
HOST = re.compile(r"""(?:(?:https?|wss?):|(?<=["'`(]))//([a-z0-9-]+(?:\.[a-z0-9-]+)+)""", re.I)
HTML_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)
CSS_REFERENCE = re.compile(r"""url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)""", re.I)
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Every outside host the vendored bundles mention, and why the docs never load it. A new one (say,
# from an upgrade) fails the test until someone has looked at what the bundle does with it.
NOT_LOADED = {
    "identifiers: XML namespaces, schema and DTD ids, a base for parsing URLs": """
        www.w3.org json-schema.org spec.openapis.org www.ibm.com swagger.io vladimirgorej.com""",
    "links a user may follow from help texts, error messages and licence headers": """
        developer.mozilla.org github.com datatracker.ietf.org www.rfc-editor.org html.spec.whatwg.org
        cloud.google.com developers.cloudflare.com vuejs.org unhead.unjs.io tailwindcss.com fb.me
        reactjs.org redux.js.org spdx.org scalar.com www.scalar.com docs.scalar.com editor.scalar.com
        client.scalar.com discord.gg x.com twitter.com www.facebook.com instagram.com www.tiktok.com
        soundcloud.com apidocumentation.com""",
    "sample values for generated examples": """
        example.com api.example.com test-site.org my-app.io dev-portal.net api-hub.com code-base.dev
        data-flow.co byte-craft.io cloud-nest.org tech-wave.net open-source.dev web-pulse.io replace.me
        picsum.photos loremflickr.com avatars.githubusercontent.com""",
    # Fonts (withDefaultFonts), proxy, agent and developer tools: docs.py turns them off. The cal.com
    # booking widget loads when a user opens Scalar's "explore" modal; the OAuth refresh fallback
    # needs an OAuth scheme, which the API has not; Swagger UI's validator badge needs a document
    # loaded by URL, and Litestar embeds it.
    "services switched off in docs.py, or reached only on a click or by documents unlike this one": """
        fonts.scalar.com proxy.scalar.com api.scalar.com registry.scalar.com dashboard.scalar.com
        app.cal.com scalar.cal.com galaxy.scalar.com validator.swagger.io""",
}
REVIEWED = {host for hosts in NOT_LOADED.values() for host in hosts.split()}


@dataclass
class Assets:
    """The docs pages' assets, fetched: text by path for scripts and styles, problems found on the way."""

    scripts: dict[str, str] = field(default_factory=dict)
    styles: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def fetch_assets(api: Api) -> Assets:
    """Every asset the docs pages reference, and what their stylesheets reference in turn."""
    assets = Assets()
    document = (await api.client.get("/docs/openapi.json")).text
    queue: list[tuple[str, str]] = []
    for page in PAGES:
        html = (await api.client.get(page)).text
        # Swagger's page embeds the API's own document, whose examples hold outside URLs as data.
        outside = outside_hosts(html.replace(document, ""))
        assets.problems += [f"{page} names {host}" for host in sorted(outside)]
        queue += [(page, ref) for ref in HTML_REFERENCE.findall(html)]
    while queue:
        referrer, ref = queue.pop()
        if ref.startswith("data:"):
            continue
        url = urljoin(referrer, ref)
        if urlsplit(url).netloc:
            assets.problems.append(f"{referrer} loads {url}")
            continue
        path = urlsplit(url).path
        if path in assets.scripts or path in assets.styles:
            continue
        response = await api.client.get(path)
        if response.status_code != 200:
            assets.problems.append(f"{referrer} loads {path}: {response.status_code}")
        elif path.endswith(".css"):
            assets.styles[path] = response.text
            queue += [(path, a or b) for a, b in CSS_REFERENCE.findall(response.text)]
        elif path.endswith(".js"):
            assets.scripts[path] = response.text
    return assets


def outside_hosts(text: str) -> set[str]:
    return {host.lower() for host in HOST.findall(text)} - LOCAL_HOSTS


async def test_docs_pages_load_only_what_this_api_serves(api: Api) -> None:
    """The docs pages and their stylesheets load only what this API serves, and name no other host."""
    assets = await fetch_assets(api)
    assert assets.problems == []
    assert set(assets.scripts) >= {
        "/docs/static/scalar/standalone.js",
        "/docs/static/swagger-ui/swagger-ui-bundle.js",
    }
    for path, css in assets.styles.items():
        # data: URIs of inline SVG name the SVG namespace, which is no request.
        assert outside_hosts(re.sub(r"data:[^)]*", "", css)) == set(), path


async def test_docs_scripts_mention_only_reviewed_outside_hosts(api: Api) -> None:
    """Each outside host named in the docs' scripts is one reviewed as never loaded (and vice versa)."""
    scripts = (await fetch_assets(api)).scripts
    found = {path: outside_hosts(text) for path, text in scripts.items()}
    unreviewed = {path: sorted(hosts - REVIEWED) for path, hosts in found.items() if hosts - REVIEWED}
    assert unreviewed == {}, "see what the bundle does with these, then list them in NOT_LOADED"
    assert REVIEWED - set().union(*found.values()) == set(), "no longer in any bundle: drop from NOT_LOADED"

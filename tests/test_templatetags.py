"""{% paintbrush_importmap %} and {% paintbrush_csrf %}: a page that loads the client
carries the CSRF token its writes need, without ensure_csrf_cookie."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse
from django.template import Context, Engine, RequestContext, Template
from django.test import Client, RequestFactory, SimpleTestCase, override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_protect

PAGE = "{% load paintbrush %}<head>{% paintbrush_importmap %}</head>"
META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')

# No context processors: the tags find the request on the RequestContext itself, so a
# project without django.template.context_processors.request works too.
_engine = Engine(libraries={"paintbrush": "paintbrush.templatetags.paintbrush"}, context_processors=[])


def page(request: HttpRequest) -> HttpResponse:
    """A user's own page: no ensure_csrf_cookie."""
    return HttpResponse(_engine.from_string(PAGE).render(RequestContext(request)))


@csrf_protect
def write(request: HttpRequest) -> HttpResponse:
    return HttpResponse("written")


urlpatterns = [path("page", page), path("write", write)]


@override_settings(ROOT_URLCONF=__name__)
class CsrfTokenInThePageTests(SimpleTestCase):
    def test_the_import_map_tag_puts_the_csrf_token_first(self) -> None:
        html = Template(PAGE).render(Context({"request": RequestFactory().get("/")}))
        self.assertRegex(html, r'^<head><meta name="csrf-token" content="\w{64}"><script type="importmap">')

    def test_a_write_with_the_pages_token_passes_csrf_without_ensure_csrf_cookie(self) -> None:
        client = Client(enforce_csrf_checks=True)
        self.assertEqual(client.post("/write").status_code, 403)  # the issue: "CSRF cookie not set"
        response = client.get("/page")
        self.assertIn("csrftoken", response.cookies)  # get_token() had the middleware set it
        self.assertIn("Cookie", response.headers["Vary"])
        match = META.search(response.content.decode())
        assert match is not None
        self.assertEqual(client.post("/write", headers={"X-CSRFToken": match.group(1)}).status_code, 200)

    def test_the_csrf_tag_alone(self) -> None:
        html = _engine.from_string("{% load paintbrush %}{% paintbrush_csrf %}").render(
            RequestContext(RequestFactory().get("/"))
        )
        self.assertRegex(html, r'^<meta name="csrf-token" content="\w{64}">$')

    def test_without_a_request_the_import_map_comes_alone(self) -> None:
        self.assertTrue(Template(PAGE).render(Context()).startswith('<head><script type="importmap">'))
        self.assertEqual(Template("{% load paintbrush %}{% paintbrush_csrf %}").render(Context()), "")

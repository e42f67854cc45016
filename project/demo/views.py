from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@ensure_csrf_cookie  # the client's REST helpers read the token from the cookie
def page(request: HttpRequest, template: str) -> HttpResponse:
    return render(request, template)

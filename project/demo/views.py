from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def page(request: HttpRequest, template: str) -> HttpResponse:
    return render(request, template)


@login_required
def shop(request: HttpRequest) -> HttpResponse:
    return render(request, "shop.html")


@login_required
def shop_admin(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("The shop admin page is for staff.")
    return render(request, "shop_admin.html")


@login_required
def ops(request: HttpRequest) -> HttpResponse:
    """This server process's numbers, plotted live from ``paintbrush.metrics``."""
    if not request.user.is_staff:
        raise PermissionDenied("The operations page is for staff.")
    return render(request, "ops.html")

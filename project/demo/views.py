from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Room

_ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


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


@login_required
def chat(request: HttpRequest) -> HttpResponse:
    """The Django Channels tutorial's lobby: type a room's name, go there."""
    return render(request, "chat/index.html")


@login_required
def chat_room(request: HttpRequest, name: str) -> HttpResponse:
    """A room's page: its last 50 messages, then each new one. Going to a room that
    does not exist creates it, public, as the tutorial's rooms are; a private room the
    user is not a member of is not found (nothing says it exists)."""
    if not _ROOM_NAME.fullmatch(name):
        raise Http404("No such room.")
    from .live import readable_rooms

    room = readable_rooms(request.user).filter(name=name).first()
    if room is None:
        if Room.objects.filter(name=name).exists():
            raise Http404("No such room.")
        owner: Any = request.user  # signed in: login_required
        room, _ = Room.objects.get_or_create(name=name, defaults={"owner": owner})
    return render(request, "chat/room.html", {"room": room})

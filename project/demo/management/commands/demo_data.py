"""Creates what is missing of the demo's users and products; never resets anything."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from project.demo.models import Product, Todo

USERS = [("admin", True), ("alice", False), ("bob", False)]
PRODUCTS = [("Paintbrush", "9.99"), ("Canvas", "24.50"), ("Easel", "89.00"), ("Palette", "12.00")]


class Command(BaseCommand):
    help = "Create the demo users (password = user name) and products, if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_data creates users with known passwords: it only runs with DEBUG on.")
        User = get_user_model()
        for username, staff in USERS:
            if User.objects.filter(username=username).exists():
                continue
            User.objects.create_user(
                username,
                email=f"{username}@example.com",
                password=username,
                is_staff=staff,
                is_superuser=staff,
            )
            self.stdout.write(f"created user {username}")
        for name, price in PRODUCTS:
            _, created = Product.objects.get_or_create(name=name, defaults={"price": Decimal(price)})
            if created:
                self.stdout.write(f"created product {name}")
        if not Todo.objects.exists():
            Todo.objects.create(title="Try Paintbrush in two windows")
            self.stdout.write("created a first todo")

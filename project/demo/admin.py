from django.contrib import admin

from .models import Checklist, Note, Order, Product, Todo


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "done", "version", "created_at"]
    fields = ["title", "done"]


@admin.register(Checklist)
class ChecklistAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "checked", "version", "created_at"]
    fields = ["title", "checked"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "created_at"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "price", "version"]
    fields = ["name", "price"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "user", "product", "quantity", "status", "version"]
    list_filter = ["status"]
    fields = ["user", "product", "quantity", "status"]

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from paintbrush.metrics import metrics_json_view, metrics_view

from .demo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("todos/", views.page, {"template": "todos.html"}, name="todos"),
    path("checklists/", views.page, {"template": "checklists.html"}, name="checklists"),
    path("notes/", views.page, {"template": "notes.html"}, name="notes"),
    path("shop/", views.shop, name="shop"),
    path("chat/", views.chat, name="chat"),
    path("chat/<str:name>/", views.chat_room, name="chat-room"),
    path("shop/admin/", views.shop_admin, name="shop-admin"),
    # Operations: the page plots the JSON view; Prometheus scrapes /metrics (paintbrush.metrics).
    path("ops/", views.ops, name="ops"),
    path("ops/metrics.json", metrics_json_view, name="ops-metrics"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The API described (docs/contracts.md); these shadow resources named schema/docs/redoc.
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/", include("paintbrush.urls")),
]

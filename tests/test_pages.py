"""The demo's pages: what each serves, and who may see the shop pages."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import TestCase


class PageTests(TestCase):
    def test_the_public_pages_render_with_the_import_map(self) -> None:
        for path in ("/", "/todos/", "/checklists/", "/notes/", "/accounts/login/"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 200, path)
            self.assertContains(response, '<script type="importmap">')

    def test_the_todos_page_has_the_create_form(self) -> None:
        self.assertContains(self.client.get("/todos/"), '<input name="title"')

    def test_signed_out_visitors_of_the_shop_are_sent_to_sign_in(self) -> None:
        for path in ("/shop/", "/shop/admin/"):
            response = self.client.get(path)
            self.assertRedirects(response, f"/accounts/login/?next={path}", fetch_redirect_response=False)

    def test_the_shop_admin_page_refuses_customers_and_serves_staff(self) -> None:
        User = get_user_model()
        self.client.force_login(User.objects.create_user("alice"))
        self.assertEqual(self.client.get("/shop/").status_code, 200)
        self.assertEqual(self.client.get("/shop/admin/").status_code, 403)
        self.client.force_login(User.objects.create_user("admin", is_staff=True))
        self.assertEqual(self.client.get("/shop/admin/").status_code, 200)

    def test_every_demo_model_is_in_the_django_admin(self) -> None:
        User = get_user_model()
        self.client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
        for model in ("todo", "checklist", "note", "product", "order"):
            self.assertEqual(self.client.get(f"/admin/demo/{model}/").status_code, 200, model)
            self.assertEqual(self.client.get(f"/admin/demo/{model}/add/").status_code, 200, model)

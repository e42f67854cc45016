"""The command side (docs/protocol.md, section 1): status codes, shapes, merge-PUT,
read-only fields, bad bodies, ETag and If-Match."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from paintbrush.testing import capture_events
from project.demo.models import Note, Todo


class RestTests(TestCase):
    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.client.post(path, body, content_type="application/json", **kwargs)

    def test_list_is_a_json_array_with_and_without_trailing_slash(self) -> None:
        Todo.objects.create(title="a")
        for path in ("/api/todos", "/api/todos/"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 200)
            self.assertEqual([t["title"] for t in response.json()], ["a"])

    def test_create_returns_201_and_the_item(self) -> None:
        response = self.post("/api/todos/", {"title": "milk"})
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertEqual(set(body), {"id", "title", "done", "created_at", "version"})
        self.assertEqual((body["title"], body["done"], body["version"]), ("milk", False, 1))
        self.assertEqual(str(Todo.objects.get().pk), body["id"])

    def test_create_without_a_title_is_400_with_field_errors(self) -> None:
        response = self.post("/api/todos", {"done": True})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"title": ["This field is required."]})

    def test_a_title_over_200_chars_is_400(self) -> None:
        response = self.post("/api/todos", {"title": "x" * 201})
        self.assertEqual(response.status_code, 400)
        self.assertIn("title", response.json())

    def test_read_only_fields_are_ignored_when_written(self) -> None:
        body = self.post(
            "/api/todos",
            {
                "title": "t",
                "id": "00000000-0000-0000-0000-000000000000",
                "version": 99,
                "created_at": "2000-01-01T00:00:00Z",
            },
        ).json()
        self.assertNotEqual(body["id"], "00000000-0000-0000-0000-000000000000")
        self.assertEqual(body["version"], 1)
        self.assertNotEqual(body["created_at"][:4], "2000")

    def test_get_one_is_200_with_a_strong_etag(self) -> None:
        todo = Todo.objects.create(title="a")
        response = self.client.get(f"/api/todos/{todo.pk}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["ETag"], '"1"')
        self.assertEqual(response.json()["title"], "a")

    def test_get_unknown_is_404_with_detail(self) -> None:
        response = self.client.get("/api/todos/6f1c3e8e-2a5f-4c55-9d8a-3d8b7a9d1e11")
        self.assertEqual(response.status_code, 404)
        self.assertIn("detail", response.json())

    def test_put_takes_a_partial_body_and_merges_it(self) -> None:
        todo = Todo.objects.create(title="keep me")
        response = self.client.put(f"/api/todos/{todo.pk}/", {"done": True}, content_type="application/json")
        self.assertEqual(response.status_code, 200)
        self.assertEqual((response.json()["title"], response.json()["done"]), ("keep me", True))
        self.assertEqual(response["ETag"], '"2"')

    def test_each_write_publishes_one_event_with_what_it_changed(self) -> None:
        with capture_events() as events:
            created = self.post("/api/todos", {"title": "milk"}).json()
            path = f"/api/todos/{created['id']}"
            self.client.put(path, {"title": "milk", "done": True}, content_type="application/json")
            self.client.patch(path, {"done": True}, content_type="application/json")  # no change
            self.client.delete(path)
        self.assertEqual(
            events,
            [
                {"resource": "todos", "action": "create", "item": created},
                {"resource": "todos", "action": "update", "id": created["id"], "fields": {"done": True}, "version": 2},
                {"resource": "todos", "action": "delete", "id": created["id"], "version": 3},
            ],
        )

    def test_patch_is_the_same_as_put(self) -> None:
        todo = Todo.objects.create(title="a")
        response = self.client.patch(f"/api/todos/{todo.pk}", {"title": "b"}, content_type="application/json")
        self.assertEqual((response.status_code, response.json()["title"]), (200, "b"))

    def test_delete_is_204_then_404(self) -> None:
        todo = Todo.objects.create(title="a")
        self.assertEqual(self.client.delete(f"/api/todos/{todo.pk}").status_code, 204)
        self.assertEqual(self.client.delete(f"/api/todos/{todo.pk}").status_code, 404)

    def test_a_put_or_delete_reads_the_row_once(self) -> None:
        # The view's locked get_object() is the previous state the write compares with.
        todo = Todo.objects.create(title="a")
        path = f"/api/todos/{todo.pk}"
        for method, body in (("put", {"done": True}), ("delete", None)):
            with self.subTest(method=method), CaptureQueriesContext(connection) as queries:
                response = getattr(self.client, method)(path, body, content_type="application/json")
                self.assertIn(response.status_code, (200, 204))
            reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
            self.assertEqual(len(reads), 1, reads)

    def test_version_counts_committed_changes_only(self) -> None:
        todo = Todo.objects.create(title="a")
        path = f"/api/todos/{todo.pk}"
        self.client.patch(path, {"title": "a"}, content_type="application/json")  # no change
        self.assertEqual(self.client.get(path).json()["version"], 1)
        self.client.patch(path, {"title": "b"}, content_type="application/json")
        self.client.patch(path, {"done": True}, content_type="application/json")
        self.assertEqual(self.client.get(path).json()["version"], 3)

    def test_if_match_with_the_current_version_writes(self) -> None:
        todo = Todo.objects.create(title="a")
        response = self.client.patch(
            f"/api/todos/{todo.pk}", {"done": True}, content_type="application/json", headers={"If-Match": '"1"'}
        )
        self.assertEqual(response.status_code, 200)

    def test_if_match_with_a_stale_version_is_412_and_writes_nothing(self) -> None:
        todo = Todo.objects.create(title="a")
        todo.title = "b"
        todo.save()  # now at version 2
        with capture_events() as events:
            for method in (self.client.put, self.client.patch):
                response = method(
                    f"/api/todos/{todo.pk}",
                    {"title": "c"},
                    content_type="application/json",
                    headers={"If-Match": '"1"'},
                )
                self.assertEqual(response.status_code, 412)
            response = self.client.delete(f"/api/todos/{todo.pk}", headers={"If-Match": '"1"'})
            self.assertEqual(response.status_code, 412)
        self.assertEqual(events.messages, [])
        todo.refresh_from_db()
        self.assertEqual((todo.title, todo.version), ("b", 2))

    def test_a_weak_etag_does_not_match_and_star_matches_any(self) -> None:
        todo = Todo.objects.create(title="a")
        path = f"/api/todos/{todo.pk}"
        weak = self.client.patch(path, {"done": True}, content_type="application/json", headers={"If-Match": 'W/"1"'})
        self.assertEqual(weak.status_code, 412)
        star = self.client.patch(path, {"done": True}, content_type="application/json", headers={"If-Match": "*"})
        self.assertEqual(star.status_code, 200)

    def test_bad_bodies_are_400_or_415_and_write_and_publish_nothing(self) -> None:
        todo = Todo.objects.create(title="a")
        cases = [
            ("post", "/api/todos", "{not json", "application/json", 400),
            ("post", "/api/todos", "[1, 2]", "application/json", 400),
            ("post", "/api/todos", '"title"', "application/json", 400),
            ("post", "/api/todos", "null", "application/json", 400),
            ("post", "/api/todos", "title=x", "application/x-www-form-urlencoded", 415),
            ("put", f"/api/todos/{todo.pk}", "{not json", "application/json", 400),
            ("patch", f"/api/todos/{todo.pk}", "[]", "application/json", 400),
            ("patch", f"/api/todos/{todo.pk}", "done=1", "text/plain", 415),
            ("put", f"/api/todos/{todo.pk}", "", "application/json", 400),
            ("post", "/api/todos", "", "application/json", 400),
            ("put", f"/api/todos/{todo.pk}", "", "text/plain", 415),
        ]
        with capture_events() as events:
            for method, path, body, content_type, status in cases:
                with self.subTest(method=method, body=body):
                    # CONTENT_TYPE also for empty bodies, which the test client would send without one.
                    response = getattr(self.client, method)(
                        path, body, content_type=content_type, CONTENT_TYPE=content_type
                    )
                    self.assertEqual(response.status_code, status)
                    self.assertTrue(response.json(), "a clear message is expected")
        self.assertEqual(events.messages, [])
        self.assertEqual(Todo.objects.count(), 1)
        todo.refresh_from_db()
        self.assertEqual((todo.title, todo.version), ("a", 1))

    def test_a_malformed_json_body_names_the_problem(self) -> None:
        response = self.post("/api/todos", "{not json")
        self.assertIn("JSON parse error", response.json()["detail"])

    def test_notes_are_rest_only_with_uuid_ids(self) -> None:
        body = self.post("/api/notes", {"title": "n"}).json()
        self.assertEqual(set(body), {"id", "title", "body", "created_at"})
        self.assertEqual(body["body"], "")
        self.assertEqual(str(Note.objects.get().pk), body["id"])

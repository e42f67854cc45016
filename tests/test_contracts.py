"""Contracts machines can read (docs/contracts.md): the OpenAPI schema the demo serves
validates and describes every resource; the AsyncAPI document validates against the
official AsyncAPI 3.0 schema and accepts the frames the server really sends; the client's
TypeScript declarations name what its modules export, and type-check together with the
generated item types.

The AsyncAPI schema and the TypeScript compiler come from node_modules (``npm ci``, which
scripts/test runs); without them these tests skip, except in CI, where they fail."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from io import StringIO
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings
from jsonschema import Draft7Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT7
from rest_framework import serializers

from paintbrush import documents
from paintbrush.contracts import asyncapi_document, rest_components, typescript_types
from paintbrush.contracts.schemas import json_schema
from paintbrush.contracts.typescript import expression
from paintbrush.resources import site
from paintbrush.testing import connect, receive
from project.demo.models import Order, Product, Todo

from .utils import IN_MEMORY

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
ASYNCAPI_SCHEMA = NODE_MODULES / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"
TSC = NODE_MODULES / ".bin" / "tsc"
CLIENT = ROOT / "paintbrush" / "static" / "paintbrush"
MODULES = ("index", "signals", "socket", "stores", "live", "rest", "dom", "doc", "patch")


def need(path: Path, what: str) -> None:
    """Skip without ``path`` (run ``npm ci``), but fail in CI, which always has it."""
    if path.exists():
        return
    message = f"{what} is missing: {path.relative_to(ROOT)} (run `npm ci`)"
    if os.environ.get("CI"):
        raise AssertionError(message)
    raise unittest.SkipTest(message)


def validator(document: dict[str, Any], pointer: str) -> Draft7Validator:
    """A validator of the schema at ``pointer`` of ``document``, whose local ``$ref``s
    resolve within ``document``."""
    registry: Registry[Any] = Registry().with_resource("urn:doc", DRAFT7.create_resource(document))
    return Draft7Validator({"$ref": f"urn:doc#{pointer}"}, registry=registry)


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# -- OpenAPI ---------------------------------------------------------------------------------


class OpenApiTests(TestCase):
    schema: dict[str, Any]

    @classmethod
    def setUpTestData(cls) -> None:
        cls.schema = json.loads(cls.client_class().get("/api/schema/", {"format": "json"}).content)

    def operation(self, path: str, method: str) -> dict[str, Any]:
        return self.schema["paths"][path][method]  # type: ignore[no-any-return]

    def test_the_demo_serves_a_valid_openapi_3_schema(self) -> None:
        response = self.client.get("/api/schema/", {"format": "json"})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(self.schema["openapi"].startswith("3."))
        validate_openapi(self.schema)

    def test_every_registered_resource_and_the_document_are_described(self) -> None:
        for resource in site:
            operations = {
                (path, method)
                for path, item in self.schema["paths"].items()
                if path.startswith(f"/api/{resource.name}/")
                for method in item
            }
            detail = next(path for path, _ in operations if path != f"/api/{resource.name}/")
            self.assertRegex(detail, rf"^/api/{resource.name}/\{{\w+\}}/$")
            self.assertEqual(
                operations,
                {(f"/api/{resource.name}/", "get"), (f"/api/{resource.name}/", "post")}
                | {(detail, method) for method in ("get", "put", "patch", "delete")},
                resource.name,
            )
        self.assertIn("200", self.operation("/api/doc/", "get")["responses"])

    def test_put_takes_a_partial_body_like_patch(self) -> None:
        for method in ("put", "patch"):
            body = self.operation("/api/todos/{id}/", method)["requestBody"]
            self.assertTrue(body["required"])
            ref = body["content"]["application/json"]["schema"]["$ref"]
            self.assertEqual(ref, "#/components/schemas/PatchedTodoRequest")
        self.assertNotIn("required", self.schema["components"]["schemas"]["PatchedTodoRequest"])
        self.assertEqual(self.schema["components"]["schemas"]["TodoRequest"]["required"], ["title"])

    def test_versioned_writes_take_if_match_and_items_carry_an_etag(self) -> None:
        for method in ("put", "patch", "delete"):
            names = [p["name"] for p in self.operation("/api/todos/{id}/", method).get("parameters", [])]
            self.assertIn("If-Match", names, method)
            self.assertIn("412", self.operation("/api/todos/{id}/", method)["responses"], method)
            # Notes have no version: If-Match would always fail, so it is not offered.
            names = [p["name"] for p in self.operation("/api/notes/{id}/", method).get("parameters", [])]
            self.assertNotIn("If-Match", names, method)
        for method in ("get", "put", "patch"):
            self.assertIn("ETag", self.operation("/api/todos/{id}/", method)["responses"]["200"]["headers"])

    def test_the_error_statuses_of_the_protocol_are_described(self) -> None:
        expected = {
            ("/api/todos/", "get"): {"200", "403"},
            ("/api/todos/", "post"): {"201", "400", "403", "413", "415"},
            ("/api/todos/{id}/", "get"): {"200", "403", "404"},
            ("/api/todos/{id}/", "put"): {"200", "400", "403", "404", "412", "413", "415"},
            ("/api/todos/{id}/", "delete"): {"204", "403", "404", "412"},
        }
        for (path, method), statuses in expected.items():
            self.assertEqual(set(self.operation(path, method)["responses"]), statuses, (path, method))

    def test_real_responses_match_their_schemas(self) -> None:
        schemas = self.schema["components"]["schemas"]
        components = {"components": {"schemas": {name: json_schema(schema) for name, schema in schemas.items()}}}
        created = self.client.post("/api/todos", {"title": "milk"}, content_type="application/json")
        validator(components, "/components/schemas/Todo").validate(created.json())
        self.assertEqual(
            set(self.schema["components"]["schemas"]["Todo"]["required"]), set(created.json()), "every field"
        )
        invalid = self.client.post("/api/todos", {"done": True}, content_type="application/json")
        validator(components, "/components/schemas/FieldErrors").validate(invalid.json())
        stale = self.client.put(
            f"/api/todos/{created.json()['id']}",
            {"done": True},
            content_type="application/json",
            headers={"If-Match": '"9"'},
        )
        self.assertEqual(stale.status_code, 412)
        validator(components, "/components/schemas/Detail").validate(stale.json())
        user = get_user_model().objects.create_user("alice")
        self.client.force_login(user)
        product = Product.objects.create(name="tea", price="2.50")
        Order.objects.create(user=user, product=product)
        for path, name in (("/api/orders", "Order"), ("/api/products", "Product")):
            for item in self.client.get(path).json():
                validator(components, f"/components/schemas/{name}").validate(item)
        self.assertEqual(self.client.get("/api/doc").json()["role"], "customer")

    def test_the_uis_load_their_assets_from_this_server(self) -> None:
        for path in ("/api/docs/", "/api/redoc/"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 200, path)
            html = response.content.decode()
            self.assertIn("/static/drf_spectacular_sidecar/", html, path)
            self.assertNotRegex(html, r"https?://cdn", path)
            for asset in re.findall(r"/static/(drf_spectacular_sidecar/[^\"'?]+)", html):
                self.assertIsNotNone(finders.find(asset), asset)


# -- AsyncAPI --------------------------------------------------------------------------------


class AsyncApiDocumentTests(SimpleTestCase):
    document: dict[str, Any]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.document = asyncapi_document(servers=["ws://localhost:8000"])

    def test_it_validates_against_the_asyncapi_3_schema(self) -> None:
        need(ASYNCAPI_SCHEMA, "The AsyncAPI 3.0 JSON schema (@asyncapi/specs)")
        schema = json.loads(ASYNCAPI_SCHEMA.read_text())
        checker = Draft7Validator(schema)
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in checker.iter_errors(self.document)]
        self.assertEqual(errors, [])
        # Not vacuous: a broken document is refused.
        broken = json.loads(json.dumps(self.document))
        del broken["operations"]["receiveOpendoc"]["action"]
        self.assertFalse(checker.is_valid(broken))

    def test_every_reference_resolves(self) -> None:
        for ref in refs(self.document):
            resolve(self.document, ref)

    def test_channels_messages_and_codes(self) -> None:
        document = self.document
        self.assertEqual(document["asyncapi"], "3.0.0")
        self.assertEqual(document["servers"]["server"], {"host": "localhost:8000", "protocol": "ws"})
        self.assertEqual(document["channels"]["live"]["address"], "/ws")
        self.assertEqual(document["channels"]["doc"]["address"], "/ws/doc")
        live = {r.name for r in site if r.live}
        self.assertEqual(live, {"todos", "checklists", "products", "orders", "rooms", "memberships", "messages"})
        expected = {"opendoc", "closedoc", "opened", "closed", "resync", "error", "doc"}
        expected |= {f"{name}.{kind}" for name in live for kind in ("snapshot", "create", "update", "delete")}
        self.assertEqual(set(document["channels"]["live"]["messages"]), expected)
        schemas = document["components"]["schemas"]
        self.assertIn("limit_exceeded", schemas["ErrorCode"]["enum"])
        self.assertIn("rate_limited", schemas["ErrorCode"]["enum"])
        self.assertEqual(set(schemas["LiveResourceName"]["enum"]), live | {"doc"})
        snapshot = document["components"]["messages"]["todos.snapshot"]["payload"]
        self.assertEqual(snapshot["properties"]["items"]["items"], {"$ref": "#/components/schemas/Todo"})
        self.assertIn("more", snapshot["properties"])
        update = document["components"]["messages"]["orders.update"]["payload"]["properties"]
        self.assertEqual(update["fields"]["properties"]["status"], {"$ref": "#/components/schemas/StatusEnum"})
        self.assertNotIn("version", update["fields"]["properties"])
        self.assertEqual(
            set(document["channels"]["live"]["x-close-codes"]),
            {"1008", "1009", "1012", "1013", "4003", "4008", "4013", "4029"},
        )

    def test_the_command_writes_the_document(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "asyncapi.json"
            call_command("paintbrush_asyncapi", "-o", str(path), stdout=StringIO())
            self.assertEqual(
                json.loads(path.read_text())["channels"], json.loads(json.dumps(asyncapi_document()))["channels"]
            )
        out = StringIO()
        call_command("paintbrush_asyncapi", "--server", "wss://example.com", "--title", "T", stdout=out)
        document = json.loads(out.getvalue())
        self.assertEqual((document["info"]["title"], document["servers"]["server"]["protocol"]), ("T", "wss"))
        with self.assertRaisesMessage(CommandError, "ws:// or wss://"):
            call_command("paintbrush_asyncapi", "--server", "http://example.com", stdout=StringIO())


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class AsyncApiFrameTests(TransactionTestCase):
    """Every frame the server sends (and every request a client sends) is valid against
    exactly one message of its channel: the document says what really goes over the wire."""

    def setUp(self) -> None:
        self.document = asyncapi_document()

    def check(self, frame: Any, channel: str = "live") -> str:
        messages = self.document["channels"][channel]["messages"]
        matches = [
            key
            for key, message in messages.items()
            if validator(self.document, f"{message['$ref'][1:]}/payload").is_valid(frame)
        ]
        self.assertEqual(len(matches), 1, f"{frame} matches {matches}")
        return str(matches[0])

    async def checked(self, ws: Any, channel: str) -> Any:
        """The next frame, checked to be one message of ``channel``."""
        frame = await receive(ws)
        self.assertEqual(self.check(frame, channel), "doc")
        return frame

    async def test_events_snapshots_and_answers(self) -> None:
        await sync_to_async(Todo.objects.create)(title="first")
        ws = await connect("/ws")
        for request in (
            {"action": "opendoc", "resource": "todos", "snapshot": True},
            {"action": "closedoc", "resource": "doc"},
        ):
            self.check(request)
        await ws.send_json_to({"action": "opendoc", "resource": "todos", "snapshot": True})
        self.assertEqual(self.check(await receive(ws)), "opened")
        self.assertEqual(self.check(await receive(ws)), "todos.snapshot")
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        self.assertEqual(self.check(await receive(ws)), "todos.create")
        todo.done = True
        await sync_to_async(todo.save)()
        self.assertEqual(self.check(await receive(ws)), "todos.update")
        await sync_to_async(todo.delete)()
        self.assertEqual(self.check(await receive(ws)), "todos.delete")
        refused: list[Any] = [{"action": "opendoc", "resource": "notes"}, {"action": "nope", "resource": "todos"}, [1]]
        for request in refused:
            await ws.send_json_to(request)
            self.assertEqual(self.check(await receive(ws)), "error")
        await ws.send_json_to({"action": "closedoc", "resource": "todos"})
        self.assertEqual(self.check(await receive(ws)), "closed")
        await ws.disconnect()

    async def test_orders_and_role_documents(self) -> None:
        user = await sync_to_async(get_user_model().objects.create_user)("alice")
        product = await sync_to_async(Product.objects.create)(name="tea", price="2.50")
        ws = await connect("/ws", user=user)
        await ws.send_json_to({"action": "opendoc", "resource": "orders", "snapshot": True})
        self.assertEqual(self.check(await receive(ws)), "opened")
        self.assertEqual(self.check(await receive(ws)), "orders.snapshot")
        await ws.send_json_to({"action": "opendoc", "resource": "doc"})
        self.assertEqual(self.check(await receive(ws)), "opened")
        self.assertEqual(self.check(await receive(ws)), "doc")
        await sync_to_async(Order.objects.create)(user=user, product=product)
        kinds = {self.check(await receive(ws)), self.check(await receive(ws))}
        self.assertEqual(kinds, {"orders.create", "doc"})
        await ws.disconnect()
        ws = await connect("/ws/doc", user=user)
        self.assertEqual(self.check(await receive(ws), "doc"), "doc")
        await ws.disconnect()
        # With patches (section 2c): a whole document with its revision, then a patch.
        ws = await connect("/ws/doc?patch=1", user=user)
        self.assertIn("rev", await self.checked(ws, "doc"))
        await sync_to_async(Order.objects.create)(user=user, product=product, quantity=2)
        self.assertIn("patch", await self.checked(ws, "doc"))
        await ws.disconnect()


class RoleDocumentShapeTests(SimpleTestCase):
    """A role that declares ``document_serializer`` gets a typed document; one that does
    not, a document with its role and anything else."""

    def setUp(self) -> None:
        class UserSerializer(serializers.Serializer[Any]):
            id = serializers.IntegerField()
            username = serializers.CharField()
            email = serializers.EmailField(allow_blank=True)

        class ShopDocumentSerializer(serializers.Serializer[Any]):
            user = UserSerializer(allow_null=True)
            orders = site.get("orders").get_serializer_class()(many=True)  # type: ignore[union-attr]
            note = serializers.CharField(required=False, allow_null=True)

        class Shop(documents.Role):
            name = "shop-customer"
            per_user = True
            document_serializer = ShopDocumentSerializer

        class Loose(documents.Role):
            name = "loose"

        self.roles = documents.roles.__class__()
        self.roles.register(Shop(), Loose())

    def test_the_typescript_types_carry_the_declared_fields(self) -> None:
        source = typescript_types(roles=self.roles)
        self.assertRegex(source, r"export type ShopCustomerRoleDocument = \{\n  role: \w+;\n\} & ShopDocument;")
        self.assertRegex(
            source,
            r"export interface ShopDocument \{\n  user: User \| null;\n  orders: Order\[\];\n"
            r"  note\?: string \| null;\n\}",
        )
        self.assertRegex(
            source, r"export interface LooseRoleDocument \{\n  role: \w+;\n  \[key: string\]: unknown;\n\}"
        )
        self.assertIn("export type RoleDocument = ShopCustomerRoleDocument | LooseRoleDocument;", source)

    def test_the_asyncapi_document_pushes_them(self) -> None:
        document = asyncapi_document(roles=self.roles)
        self.assertEqual(
            document["components"]["schemas"]["RoleDocument"]["oneOf"],
            [
                {"$ref": "#/components/schemas/ShopCustomerRoleDocument"},
                {"$ref": "#/components/schemas/LooseRoleDocument"},
            ],
        )
        push = validator(document, "/components/schemas/DocumentPush")
        user = {"id": 1, "username": "a", "email": ""}
        self.assertTrue(push.is_valid({"type": "doc", "doc": {"role": "shop-customer", "user": user, "orders": []}}))
        self.assertTrue(push.is_valid({"type": "doc", "doc": {"role": "loose", "anything": [1]}}))
        self.assertFalse(push.is_valid({"type": "doc", "doc": {"role": "shop-customer", "user": 5, "orders": []}}))

    def test_no_roles_still_make_a_document(self) -> None:
        roles = documents.roles.__class__()
        self.assertIn(
            "export type RoleDocument = { role: string; [key: string]: unknown };", typescript_types(roles=roles)
        )
        schema = asyncapi_document(roles=roles)["components"]["schemas"]["RoleDocument"]
        self.assertEqual(schema["properties"]["role"], {"type": "string"})


# -- JSON Schema and TypeScript, unit by unit -------------------------------------------------------


class SchemaConversionTests(SimpleTestCase):
    def test_openapi_3_0_keywords_become_json_schema(self) -> None:
        self.assertEqual(json_schema({"type": "string", "nullable": True}), {"type": ["string", "null"]})
        self.assertEqual(
            json_schema({"type": "string", "enum": ["a"], "nullable": True}),
            {"type": ["string", "null"], "enum": ["a", None]},
        )
        self.assertEqual(
            json_schema({"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": True}),
            {"anyOf": [{"allOf": [{"$ref": "#/components/schemas/A"}]}, {"type": "null"}]},
        )
        self.assertEqual(
            json_schema(
                {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 9, "exclusiveMaximum": False}
            ),
            {"type": "number", "exclusiveMinimum": 0, "maximum": 9},
        )
        self.assertEqual(
            json_schema(
                {"type": "object", "properties": {"a": {"type": "integer", "example": 3, "x-spec-enum-id": "h"}}}
            ),
            {"type": "object", "properties": {"a": {"type": "integer", "examples": [3]}}},
        )
        self.assertEqual(json_schema({"type": ["string"], "nullable": True}), {"type": ["string", "null"]})
        self.assertEqual(
            json_schema({"oneOf": [{"type": "string"}], "discriminator": {"propertyName": "t"}}),
            {"anyOf": [{"type": "string"}]},
        )

    def test_typescript_expressions(self) -> None:
        cases = [
            ({}, "unknown"),
            (False, "never"),
            ({"type": ["string", "null"]}, "string | null"),
            ({"type": "array", "items": {"type": ["integer", "null"]}}, "(number | null)[]"),
            ({"enum": ["a", None]}, '"a" | null'),
            ({"const": 3}, "3"),
            ({"anyOf": [{"$ref": "#/components/schemas/A.b"}, {"type": "null"}]}, "A_b | null"),
            (
                {"allOf": [{"$ref": "#/components/schemas/A"}, {"type": "object", "properties": {}}]},
                "A & {\n  [key: string]: unknown;\n}",
            ),
            ({"type": "object", "additionalProperties": {"type": "boolean"}}, "{\n  [key: string]: boolean;\n}"),
            (
                {"type": "object", "properties": {"a-b": {"type": "number"}}, "required": ["a-b"]},
                '{\n  "a-b": number;\n}',
            ),
            ({"type": "string", "format": "binary", "foo": 1}, "string"),
            ({"type": "whatever"}, "unknown"),
        ]
        for schema, expected in cases:
            self.assertEqual(expression(schema), expected, schema)

    def test_rest_components_whatever_the_default_schema_class(self) -> None:
        for schema_class in ("drf_spectacular.openapi.AutoSchema", "rest_framework.schemas.openapi.AutoSchema"):
            with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_SCHEMA_CLASS": schema_class}):
                found = rest_components([site.get("todos")])  # type: ignore[list-item]
            todo = found.components["Todo"]
            self.assertEqual(set(todo["required"]), set(todo["properties"]), schema_class)
            self.assertEqual(found.resources[0].update, {"$ref": "#/components/schemas/PatchedTodoRequest"})

    def test_rest_components_of_a_subset(self) -> None:
        found = rest_components([site.get("todos")])  # type: ignore[list-item]
        self.assertEqual([s.resource.name for s in found.resources], ["todos"])
        self.assertEqual(found.resources[0].item, {"$ref": "#/components/schemas/Todo"})
        self.assertNotIn("Order", found.components)


# -- TypeScript --------------------------------------------------------------------------------


USAGE = """\
import {
  ApiError, LiveSocket, batch, computed, configure, connect, createItem, effect, escapeHtml, getSocket,
  listItems, liveDoc, liveResource, removeItem, renderList, root, signal, untracked, updateItem,
} from "paintbrush";
import type { ErrorMessage, ServerMessage, UpdateMessage } from "paintbrush";
import type {
  CreateBodies, LiveResourceName, Order, Resources, RoleDocument, StatusEnum, Todo, UpdateBodies,
} from "./resources.js";

configure({ base: "/v2/api/" });
configure({ fetch: null });
configure({ fetch: globalThis.fetch });

const socket: LiveSocket = getSocket();
const other = connect("/ws", { WebSocket, backoff: { initial: 100 }, random: () => 0.5 });
other.close();

const todos = liveResource<Todo>(socket, "todos");
const title: string = todos.items.peek().get("x")?.get().title ?? "";
const stop = renderList(document.createElement("ul"), todos.items, (todo, id) => {
  const li = document.createElement("li");
  effect(() => { li.textContent = `${todo.get().title} ${escapeHtml(id)} ${todo.get().done ? "x" : ""}`; });
  return li;
}, { sort: (a, b) => a.created_at.localeCompare(b.created_at) });
stop();

const orders = liveResource<Order>(socket, "orders");
const status: StatusEnum | undefined = orders.items.peek().get(1)?.get().status;
const generic = liveResource(socket, "checklists");
const version: number | undefined = generic.items.peek().get("a")?.get().version;

const { doc } = liveDoc<RoleDocument>(socket);
effect(() => {
  const d = doc.get();
  if (d) console.log(d.role);
});

async function writes(): Promise<void> {
  const body: CreateBodies["todos"] = { title: "x" };
  const todo = await createItem<Todo>("todos", body);
  const change: UpdateBodies["todos"] = { done: true };
  await updateItem<Resources["todos"]>("todos", todo.id, change, { version: todo.version });
  const all: Todo[] = await listItems<Todo>("todos");
  await removeItem("todos", all[0].id, { version: 3 });
  try {
    await removeItem("orders", 1);
  } catch (err) {
    if (err instanceof ApiError && err.status === 412) console.log(err.body);
  }
}
void writes();

const live: LiveResourceName = "todos";
const n = signal(1);
const twice = computed(() => n.get() * 2);
batch(() => { n.set(2); n.update((x) => x + 1); });
const peeked: number = untracked(() => twice.get());
root((dispose) => dispose());
const unsubscribe = socket.subscribe(live, (message: ServerMessage<Todo>) => {
  if ("action" in message && message.action === "update") {
    const update: UpdateMessage<Todo> = message;
    console.log(update.fields.title, update.version);
  }
});
unsubscribe();
effect(() => {
  const error: ErrorMessage | null = socket.errors.get();
  console.log(error?.error, socket.connected.get(), title, status, version, peeked);
});
"""

MISUSE = """\
import { getSocket, liveResource, updateItem } from "paintbrush";
import type { Todo } from "./resources.js";

const todos = liveResource<Todo>(getSocket(), "todos");
const wrong: number = todos.items.peek().get("x")!.get().title;
todos.items.peek().get("x")!.get().nope;
void updateItem("todos", { id: 1 }, {});
console.log(wrong);
"""


class TypeScriptTests(SimpleTestCase):
    def exports_of_module(self) -> dict[str, list[str]]:
        node = shutil.which("node")
        if node is None:
            raise AssertionError("node is needed (scripts/test installs it)")
        script = (
            "const out = {};"
            f"for (const m of {json.dumps(list(MODULES))}) "
            f"out[m] = Object.keys(await import({json.dumps(CLIENT.as_uri())} + '/' + m + '.js')).sort();"
            "console.log(JSON.stringify(out));"
        )
        result = subprocess.run(
            [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True, timeout=60
        )
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def test_each_declaration_file_names_exactly_what_its_module_exports(self) -> None:
        runtime = self.exports_of_module()
        for module in MODULES:
            source = (CLIENT / f"{module}.d.ts").read_text()
            declared = set(re.findall(r"^export (?:declare )?(?:function|class|const|let) (\w+)", source, re.M))
            for names in re.findall(r"^export \{([^}]*)\} from", source, re.M):
                declared |= {name.strip() for name in names.split(",") if name.strip()}
            self.assertEqual(sorted(declared), runtime[module], module)

    def tsc(self, folder: Path) -> subprocess.CompletedProcess[str]:
        need(TSC, "The TypeScript compiler (typescript)")
        config = {"extends": str(ROOT / "tsconfig.json"), "include": [str(folder / "*.ts")]}
        (folder / "tsconfig.json").write_text(json.dumps(config))
        return subprocess.run(
            [str(TSC), "-p", str(folder / "tsconfig.json"), "--noEmit", "--strict"],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )

    def test_the_declarations_type_check(self) -> None:
        need(TSC, "The TypeScript compiler (typescript)")
        result = subprocess.run(
            [str(TSC), "-p", str(ROOT / "tsconfig.json")], check=False, capture_output=True, text=True, timeout=300
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_the_generated_types_and_the_client_type_check_together(self) -> None:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            call_command("paintbrush_types", "-o", str(folder / "resources.d.ts"), stdout=StringIO())
            (folder / "usage.ts").write_text(USAGE)
            result = self.tsc(folder)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_misuse_does_not_type_check(self) -> None:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            (folder / "resources.d.ts").write_text(typescript_types())
            (folder / "misuse.ts").write_text(MISUSE)
            result = self.tsc(folder)
            self.assertNotEqual(result.returncode, 0)
            lines = {int(line) for line in re.findall(r"misuse\.ts\((\d+),", result.stdout)}
            self.assertEqual(lines, {5, 6, 7}, result.stdout)

    def test_the_command_writes_to_standard_output(self) -> None:
        out = StringIO()
        call_command("paintbrush_types", stdout=out)
        self.assertEqual(out.getvalue(), typescript_types())
        self.assertIn("export interface Todo {", out.getvalue())
        self.assertRegex(out.getvalue(), r"export type LiveResourceName = .*\"todos\"")

#!/usr/bin/env python3
"""Calls every operation of virtplugd's OpenAPI document once through the Python client generated
from it (openapi-python-client, package `virtplugd_client` on PYTHONPATH), against a running daemon
serving a fresh mock host, and checks each answer's status and key fields.

Usage: smoke.py --socket PATH --document openapi.json --default-uri URI --peer-uri URI
  --socket     the daemon's read-write unix socket
  --default-uri  the daemon's default URI, a fresh mock host
  --document   the OpenAPI document the client was generated from: every operationId in it must
               have been called here, and nothing else
  --peer-uri   a second URI the daemon serves (`--allow-uri`), a fresh mock host: the migration target

Prints one `ok <operationId> <status>` line per call and exits non-zero at the first failure.
The event stream never ends, so it is read through the generated request builder (`_get_kwargs`)
on the generated client's own httpx client in streaming mode, up to the events it must contain.
"""

import argparse
import json
import sys
import time

import httpx
from virtplugd_client import Client
from virtplugd_client.api.connection import connection_info
from virtplugd_client.api.domain import (
    domain_action,
    domain_define,
    domain_list,
    domain_lookup,
    domain_undefine,
    domain_xml,
)
from virtplugd_client.api.event import event_stream
from virtplugd_client.api.observe import daemon_health, daemon_metrics, daemon_readiness
from virtplugd_client.api.snapshot import (
    snapshot_children,
    snapshot_create,
    snapshot_current,
    snapshot_delete,
    snapshot_edit,
    snapshot_export,
    snapshot_handover,
    snapshot_import,
    snapshot_list,
    snapshot_lookup,
    snapshot_revert,
    snapshot_store,
    snapshot_xml,
)
from virtplugd_client.api.task import import_settle, import_status, migration_start, task_get, task_list
from virtplugd_client.models import (
    CreateRequest,
    DefineRequest,
    ErrorBody,
    FlagsRequest,
    HandoverRequest,
    ImportRequest,
    MigrationRequest,
    TaskState,
)

# libvirt flag values (plugin-api/abi/src/flags.rs).
SNAPSHOT_DELETE_METADATA_ONLY = 1 << 1
SNAPSHOT_LIST_DESCENDANTS = 1 << 0
SNAPSHOT_XML_SECURE = 1 << 0

SMOKE_DOMAIN = """<domain type='test'>
  <name>smoke</name>
  <uuid>2f6a3c1e-8a0b-4c55-9d1e-5a2b7c9e0f11</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
</domain>"""

called = []


def check(op, resp, status, parsed_type=None):
    """Asserts the status (and the parsed type), records the call, returns the parsed answer."""
    if resp.status_code != status:
        raise AssertionError(f"{op}: status {int(resp.status_code)}, expected {status}: {resp.content[:500]!r}")
    if parsed_type is not None and not isinstance(resp.parsed, parsed_type):
        raise AssertionError(f"{op}: parsed {type(resp.parsed).__name__}, expected {parsed_type.__name__}")
    called.append(op)
    print(f"ok {op} {status}", flush=True)
    return resp.parsed


def expect(op, what, got, want):
    if got != want:
        raise AssertionError(f"{op}: {what} is {got!r}, expected {want!r}")


def wait_task(client, task_id, op):
    """Polls the task until it leaves `running` (the counted `task_get` call is the caller's)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = task_get.sync_detailed(task_id, client=client).parsed
        if t.state != TaskState.RUNNING:
            return t
        time.sleep(0.05)
    raise AssertionError(f"{op}: task {task_id} still running after 60 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--document", required=True)
    ap.add_argument("--default-uri", required=True)
    ap.add_argument("--peer-uri", required=True)
    args = ap.parse_args()

    transport = httpx.HTTPTransport(uds=args.socket)
    client = Client(base_url="http://localhost", httpx_args={"transport": transport}, timeout=httpx.Timeout(30.0))

    # --- operator routes (no virtplug-uri) ---
    h = check("daemon_health", daemon_health.sync_detailed(client=client), 200)
    expect("daemon_health", "status", h.status, "ok")
    r = check("daemon_readiness", daemon_readiness.sync_detailed(client=client), 200)
    expect("daemon_readiness", "status", r.status, "ready")
    expect("daemon_readiness", "checks", [(c.check, c.uri if c.uri else None, c.ok) for c in r.checks],
           [("plugins", None, True), ("uri", args.default_uri, True), ("uri", args.peer_uri, True)])

    # --- connection and domains ---
    info = check("connection_info", connection_info.sync_detailed(client=client), 200)
    expect("connection_info", "name", info.name, "mock")
    expect("connection_info", "schemes", info.schemes, ["mock"])

    doms = check("domain_list", domain_list.sync_detailed(client=client), 200, list)
    expect("domain_list", "names", [d.name for d in doms], ["test"])

    d = check("domain_define", domain_define.sync_detailed(client=client, body=DefineRequest(xml=SMOKE_DOMAIN)), 201)
    expect("domain_define", "name", d.name, "smoke")
    expect("domain_define", "persistent", d.persistent, True)

    # Paging: one domain per page (name order), the next page's token in X-Next-Page-Token and Link.
    r = domain_list.sync_detailed(client=client, limit=1)
    expect("domain_list", "first page", [x.name for x in check("domain_list", r, 200, list)], ["smoke"])
    token = r.headers.get("x-next-page-token")
    expect("domain_list", "Link", r.headers.get("link"), f'</v1/domains?limit=1&page_token={token}>; rel="next"')
    r = domain_list.sync_detailed(client=client, limit=1, page_token=token)
    expect("domain_list", "second page", [x.name for x in check("domain_list", r, 200, list)], ["test"])
    expect("domain_list", "token after the last page", r.headers.get("x-next-page-token"), None)
    bad = domain_list.sync_detailed(client=client, page_token="not-a-token")
    expect("domain_list", "bad token (status, code)", (int(bad.status_code), bad.parsed.code), (400, 8))

    d = check("domain_lookup", domain_lookup.sync_detailed("smoke", client=client), 200)
    expect("domain_lookup", "uuid", d.uuid, "2f6a3c1e-8a0b-4c55-9d1e-5a2b7c9e0f11")
    expect("domain_lookup", "state (shut off)", d.state, 5)

    x = check("domain_xml", domain_xml.sync_detailed("smoke", client=client), 200)
    if "<name>smoke</name>" not in x.xml:
        raise AssertionError(f"domain_xml: no <name>smoke</name> in {x.xml!r}")

    check("domain_action", domain_action.sync_detailed("smoke", "start", client=client, body=FlagsRequest()), 200)
    running = domain_list.sync_detailed(client=client).parsed
    expect("domain_action", "smoke's state after start", {x.name: x.state for x in running}["smoke"], 1)

    # --- snapshots of `test` ---
    r = snapshot_create.sync_detailed(
        "test", client=client, body=CreateRequest(xml="<domainsnapshot><name>a</name></domainsnapshot>")
    )
    expect("snapshot_create", "name", check("snapshot_create", r, 201).name, "a")
    # A second snapshot, `b` under `a` (create is the only way to make one; counted once above),
    # with an Idempotency-Key and a request id, then retried: the first answer comes back, the
    # first request's id with it, and no second snapshot is made.
    def create_b(request_id):
        return snapshot_create.sync_detailed(
            "test", client=client, body=CreateRequest(xml="<domainsnapshot><name>b</name></domainsnapshot>"),
            idempotency_key="smoke-create-b", x_request_id=request_id,
        )
    b = create_b("smoke-create-b-1")
    expect("snapshot_create", "second status", int(b.status_code), 201)
    expect("snapshot_create", "X-Request-Id", b.headers.get("x-request-id"), "smoke-create-b-1")
    expect("snapshot_create", "Idempotent-Replayed", b.headers.get("idempotent-replayed"), None)
    again = create_b("smoke-create-b-2")
    expect("snapshot_create", "retry (status, name)", (int(again.status_code), again.parsed.name), (201, "b"))
    expect("snapshot_create", "retry Idempotent-Replayed", again.headers.get("idempotent-replayed"), "true")
    expect("snapshot_create", "retry X-Request-Id", again.headers.get("x-request-id"), "smoke-create-b-1")

    lst = check("snapshot_list", snapshot_list.sync_detailed("test", client=client), 200, list)
    expect("snapshot_list", "(name, parent, current)", sorted((s.name, s.parent, s.current) for s in lst),
           [("a", None, False), ("b", "a", True)])

    # Conditional reads: the ETag comes back, If-None-Match with it answers 304 with no body.
    r = snapshot_list.sync_detailed("test", client=client)
    tag = r.headers.get("etag")
    if not tag or not tag.startswith('"g'):
        raise AssertionError(f"snapshot_list: ETag {tag!r}")
    check("snapshot_list", snapshot_list.sync_detailed("test", client=client, if_none_match=tag), 304)
    # Paging: one snapshot per page (name order).
    r = snapshot_list.sync_detailed("test", client=client, limit=1)
    expect("snapshot_list", "first page", [x.name for x in check("snapshot_list", r, 200, list)], ["a"])
    r = snapshot_list.sync_detailed("test", client=client, limit=1, page_token=r.headers.get("x-next-page-token"))
    expect("snapshot_list", "second page", [x.name for x in check("snapshot_list", r, 200, list)], ["b"])
    expect("snapshot_list", "token after the last page", r.headers.get("x-next-page-token"), None)

    r = snapshot_lookup.sync_detailed("test", "b", client=client)
    s = check("snapshot_lookup", r, 200)
    expect("snapshot_lookup", "(name, parent)", (s.name, s.parent), ("b", "a"))
    r = snapshot_lookup.sync_detailed("test", "b", client=client, if_none_match=r.headers.get("etag"))
    check("snapshot_lookup", r, 304)

    kids = check("snapshot_children",
                 snapshot_children.sync_detailed("test", "a", client=client, flags=SNAPSHOT_LIST_DESCENDANTS), 200)
    expect("snapshot_children", "names", [k.name for k in kids], ["b"])
    r = snapshot_children.sync_detailed("test", "a", client=client, flags=SNAPSHOT_LIST_DESCENDANTS, limit=1)
    expect("snapshot_children", "one page", ([k.name for k in check("snapshot_children", r, 200)],
                                             r.headers.get("x-next-page-token")), (["b"], None))
    r = snapshot_children.sync_detailed("test", "a", client=client, flags=SNAPSHOT_LIST_DESCENDANTS,
                                        if_none_match=r.headers.get("etag"))
    expect("snapshot_children", "another query's ETag", int(r.status_code), 200)

    x = check("snapshot_xml", snapshot_xml.sync_detailed("test", "a", client=client, flags=SNAPSHOT_XML_SECURE), 200)
    if "<name>a</name>" not in x.xml:
        raise AssertionError(f"snapshot_xml: no <name>a</name> in {x.xml!r}")

    # Redefine `a` with a description (its own XML, edited; REDEFINE = 1).
    edited = x.xml.replace("<name>a</name>", "<name>a</name>\n  <description>smoke</description>", 1)
    r = snapshot_edit.sync_detailed("test", "a", client=client, body=CreateRequest(xml=edited, flags=1))
    expect("snapshot_edit", "name", check("snapshot_edit", r, 200).name, "a")

    check("snapshot_revert", snapshot_revert.sync_detailed("test", "a", client=client, body=FlagsRequest()), 200)
    r = snapshot_current.sync_detailed("test", client=client)
    cur = check("snapshot_current", r, 200)
    expect("snapshot_current", "name", cur.current.name, "a")
    check("snapshot_current", snapshot_current.sync_detailed("test", client=client,
                                                             if_none_match=r.headers.get("etag")), 304)

    h = check("snapshot_export", snapshot_export.sync_detailed("test", client=client), 200)
    expect("snapshot_export", "(names, parents, current)", (h.names, h.parents, h.current), (["a", "b"], [None, "a"], "a"))
    if "<description>smoke</description>" not in h.xmls[0]:
        raise AssertionError("snapshot_export: the edit is not in a's XML")

    # The shared metadata store: a mock without `store=` keeps its metadata to itself.
    for op, r in (("snapshot_store", snapshot_store.sync_detailed("test", client=client)),
                  ("snapshot_handover", snapshot_handover.sync_detailed("test", client=client,
                                                                        body=HandoverRequest(to="h2")))):
        err = check(op, r, 501, ErrorBody)
        expect(op, "error (code, name, message)", (err.code, err.name, err.message),
               (3, "VIR_ERR_NO_SUPPORT", f"this function is not supported by the connection driver: {op}"))

    # Drop b's metadata, then import the exported hierarchy back as a task (`async=true`).
    check("snapshot_delete", snapshot_delete.sync_detailed("test", "b", client=client,
                                                           flags=SNAPSHOT_DELETE_METADATA_ONLY), 200)
    after = [s.name for s in snapshot_list.sync_detailed("test", client=client).parsed]
    expect("snapshot_delete", "names left", after, ["a"])
    empty = snapshot_delete.sync_detailed("test", "a", client=client, flags=SNAPSHOT_DELETE_METADATA_ONLY)
    expect("snapshot_delete", "second status", int(empty.status_code), 200)

    r = snapshot_import.sync_detailed("test", client=client, async_=True,
                                      body=ImportRequest(xmls=h.xmls, current=h.current))
    task = check("snapshot_import", r, 202)
    expect("snapshot_import", "kind", task.kind, "snapshot_import")
    expect("snapshot_import", "Location", r.headers.get("location"), f"/v1/tasks/{task.id}")
    done = wait_task(client, task.id, "snapshot_import")
    expect("snapshot_import", "task state", done.state, TaskState.SUCCEEDED)
    expect("snapshot_import", "task result", done.result.to_dict(), {"snapshots": 2, "dry_run": False})
    names = sorted(s.name for s in snapshot_list.sync_detailed("test", client=client).parsed)
    expect("snapshot_import", "names after", names, ["a", "b"])

    t = check("task_get", task_get.sync_detailed(task.id, client=client), 200)
    expect("task_get", "(id, state, done, total)", (t.id, t.state, t.done, t.total), (task.id, TaskState.SUCCEEDED, 2, 2))

    # --- migration (dry run to the peer host), imports, tasks ---
    r = migration_start.sync_detailed(client=client, body=MigrationRequest(domain="test", to=args.peer_uri, dry_run=True))
    mig = check("migration_start", r, 202)
    expect("migration_start", "kind", mig.kind, "migrate_snapshots")
    done = wait_task(client, mig.id, "migration_start")
    expect("migration_start", "task state", done.state, TaskState.SUCCEEDED)

    tasks = check("task_list", task_list.sync_detailed(client=client), 200, list)
    expect("task_list", "(id, kind)", [(t.id, t.kind) for t in tasks],
           [(task.id, "snapshot_import"), (mig.id, "migrate_snapshots")])
    r = task_list.sync_detailed(client=client, limit=1)
    expect("task_list", "first page", [t.id for t in check("task_list", r, 200, list)], [task.id])
    r = task_list.sync_detailed(client=client, limit=1, page_token=r.headers.get("x-next-page-token"))
    expect("task_list", "second page", [t.id for t in check("task_list", r, 200, list)], [mig.id])

    st = check("import_status", import_status.sync_detailed("smoke-migration-1", client=client), 200)
    expect("import_status", "(migration, state)", (st.migration, st.state), ("smoke-migration-1", "unknown"))
    st = check("import_settle", import_settle.sync_detailed("smoke-migration-1", client=client), 200)
    expect("import_settle", "(migration, state)", (st.migration, st.state), ("smoke-migration-1", "aborted"))

    # --- undefine, then an error answer parsed as ErrorBody ---
    # `smoke` runs, so undefining it leaves it transient (libvirt's rule).
    check("domain_undefine", domain_undefine.sync_detailed("smoke", client=client), 200)
    left = domain_lookup.sync_detailed("smoke", client=client).parsed
    expect("domain_undefine", "(state, persistent) after", (left.state, left.persistent), (1, False))
    gone = domain_lookup.sync_detailed("nosuch", client=client)
    expect("domain_lookup", "status of an unknown domain", int(gone.status_code), 404)
    if not isinstance(gone.parsed, ErrorBody):
        raise AssertionError(f"domain_lookup: 404 parsed as {type(gone.parsed).__name__}")
    expect("domain_lookup", "error (code, name, message)", (gone.parsed.code, gone.parsed.name, gone.parsed.message),
           (42, "VIR_ERR_NO_DOMAIN", "Domain not found"))

    # --- the event stream, from the start ---
    kwargs = event_stream._get_kwargs(since=0)
    want = {("domain.defined", "smoke", None), ("snapshot.created", "test", "a"), ("snapshot.imported", "test", None),
            ("domain.undefined", "smoke", None)}
    seen = set()
    with client.get_httpx_client().stream(**kwargs) as resp:
        expect("event_stream", "status", resp.status_code, 200)
        expect("event_stream", "content type", resp.headers.get("content-type"), "text/event-stream")
        event, last_seq = None, 0
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                e = json.loads(line[len("data: "):])
                expect("event_stream", "kind", e["kind"], event)
                if e["seq"] <= last_seq:
                    raise AssertionError(f"event_stream: seq {e['seq']} after {last_seq}")
                last_seq = e["seq"]
                seen.add((e["kind"], e["domain"], e["snapshot"]))
                if want <= seen:
                    break
    called.append("event_stream")
    print("ok event_stream 200", flush=True)

    # Last, so that every route above has been counted.
    resp = daemon_metrics.sync_detailed(client=client)
    text = check("daemon_metrics", resp, 200, str)
    expect("daemon_metrics", "content type", resp.headers.get("content-type"),
           "application/openmetrics-text; version=1.0.0; charset=utf-8")
    # Three creates answered 201: `a`, `b` and `b`'s replayed retry (every answer is counted).
    for line in ('virtplugd_http_requests_total{method="POST",route="/v1/domains/{dom}/snapshots",status="201"} 3',
                 'virtplugd_http_requests_total{method="GET",route="/healthz",status="200"} 1'):
        if line not in text.splitlines():
            raise AssertionError(f"daemon_metrics: no line {line!r}")
    if not text.endswith("# EOF\n"):
        raise AssertionError("daemon_metrics: the exposition does not end with # EOF")

    documented = set()
    with open(args.document) as f:
        for ops in json.load(f)["paths"].values():
            documented.update(op["operationId"] for op in ops.values())
    missing, extra = documented - set(called), set(called) - documented
    if missing or extra:
        raise AssertionError(f"operations not called: {sorted(missing)}; called but undocumented: {sorted(extra)}")
    print(f"smoke: all {len(documented)} operations called", flush=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)

"""A lost key file is never silently replaced, and a ring that lacks a stored case's key
refuses to start, naming the key ids.

With keys.json gone, `safeshare dev` used to make a new ring and start: every earlier case then
answered INTERNAL and was unrecoverable while new cases worked, so nothing looked wrong.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from safeshare.codec import KeyRing, KeyRingError, data_converter, ensure_key_file, write_key_file
from safeshare.codec.coverage import MissingKeysError, require_keys_for_stored_cases
from safeshare.pki import DevPki
from tests.factories import sharing_request

ROOT = Path(__file__).resolve().parents[2]
RETENTION = Duration(seconds=86400)


def test_no_new_ring_is_made_beside_existing_case_data(tmp_path: Path) -> None:
    temporal_db = tmp_path / "temporal.db"
    temporal_db.write_bytes(b"cases encrypted with the lost ring")
    keys = tmp_path / "dev" / "keys.json"
    with pytest.raises(KeyRingError, match="restore the key ring from its backup"):
        ensure_key_file(keys, existing_data=(temporal_db,))
    assert not keys.exists(), "no ring was created"
    # A first start, with no data yet, makes one as before.
    ring = ensure_key_file(tmp_path / "fresh" / "keys.json", existing_data=(tmp_path / "none",))
    assert ring.ids


async def _namespace(env: WorkflowEnvironment) -> str:
    name = f"keys-{uuid.uuid4().hex[:8]}"
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=RETENTION)
    )
    return name


@pytest.mark.asyncio(loop_scope="session")
async def test_a_ring_without_a_stored_cases_key_refuses_naming_it(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    namespace = await _namespace(dev_server)
    old = KeyRing.generate("2026-01-old")
    config = dev_server.client.config()
    config["namespace"] = namespace
    config["data_converter"] = data_converter(old)
    for _ in range(50):  # the namespace becomes usable within moments
        try:
            client = Client(**config)
            request = sharing_request()
            await client.start_workflow(
                "SharingCase", request, id=f"case-{'a' * 20}", task_queue="no-worker-here",
                run_timeout=timedelta(minutes=5),
            )  # fmt: skip
            break
        except Exception:
            await asyncio.sleep(0.1)
    replaced = KeyRing.generate("2026-12-new")
    for _ in range(100):  # visibility lists the case within moments
        try:
            await require_keys_for_stored_cases(client, replaced)
        except MissingKeysError as err:
            assert "'2026-01-old' (1 workflows)" in str(err)
            assert "2026-12-new" in str(err)
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the missing key was never reported")
    # With the old key back in the ring, it starts.
    await require_keys_for_stored_cases(client, KeyRing(replaced.keys + old.keys))

    # And the hub refuses to start with the replaced ring, in one line naming the key.
    keys_file = tmp_path / "keys.json"
    await asyncio.to_thread(write_key_file, keys_file, replaced)
    _, gateway_key = await asyncio.to_thread(DevPki(tmp_path / "pki").gateway_signing_key)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFESHARE_", "TEMPORAL_"))}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "safeshare", "hub",
         "--temporal-address", dev_server.client.service_client.config.target_host,
         "--namespace", namespace, "--keys-file", str(keys_file),
         "--gateway-key", str(gateway_key)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("safeshare: error: stored cases were encrypted with key ids")
    assert "'2026-01-old'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_a_key_used_only_later_in_a_history_is_checked_too(
    dev_server: WorkflowEnvironment,
) -> None:
    """Mid-rotation: a case started under the old key, then one writer (already on the new
    key) signals it. A ring with the old key alone lacks the new one, used only by a later
    event: it refuses, naming the new key (the first event alone names only the old)."""
    namespace = await _namespace(dev_server)
    old = KeyRing.generate("2026-01-first")
    rotated = KeyRing.generate("2026-06-rotated").keys + old.keys
    clients = []
    for ring in (old, KeyRing(rotated)):
        config = dev_server.client.config()
        config["namespace"] = namespace
        config["data_converter"] = data_converter(ring)
        clients.append(Client(**config))
    starter, rotated_writer = clients
    workflow_id = f"case-{'b' * 20}"
    for _ in range(50):  # the namespace becomes usable within moments
        try:
            await starter.start_workflow(
                "SharingCase", sharing_request(), id=workflow_id, task_queue="no-worker-here",
                run_timeout=timedelta(minutes=5),
            )  # fmt: skip
            break
        except Exception:
            await asyncio.sleep(0.1)
    await rotated_writer.get_workflow_handle(workflow_id).signal("withdraw_exchange", "later")
    for _ in range(100):  # visibility lists the case within moments
        try:
            await require_keys_for_stored_cases(starter, old)
        except MissingKeysError as err:
            assert "'2026-06-rotated' (1 workflows)" in str(err)
            assert "2026-01-first" not in str(err).split("the ring has")[0]
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the key used only by a later event was never reported")
    await require_keys_for_stored_cases(starter, KeyRing(rotated))

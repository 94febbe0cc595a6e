"""A key rotated mid-case: the running case completes, old events still decode and replay,
new events use the new key."""

from __future__ import annotations

import uuid
from datetime import timedelta

from google.protobuf.message import Message
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from protos.sharing.v1 import case_pb2 as pb
from safeshare.codec import KeyRing, data_converter
from safeshare.codec.aes import key_id_of
from tests.eventually import eventually
from tests.factories import sharing_request


@activity.defn
async def deliver(request: pb.SharingRequest) -> pb.DeliveryReceipt:
    """Stands in for an agency activity: personal data in, a receipt out."""
    return pb.DeliveryReceipt(delivery_id=f"{request.request_id}.1", item_count=1)


@workflow.defn(sandboxed=False)
class RotationCase:
    """A case in miniature: an activity, a wait for the recipient (an update), an activity.

    Kept here rather than driving SharingCase so the test pins the codec, not the lifecycle.
    """

    def __init__(self) -> None:
        self._ack: pb.Acknowledgement | None = None
        self._delivered = False

    @workflow.run
    async def run(self, request: pb.SharingRequest) -> pb.Acknowledgement:
        first = await workflow.execute_activity(
            deliver, request, start_to_close_timeout=timedelta(seconds=10)
        )
        self._delivered = True
        await workflow.wait_condition(lambda: self._ack is not None)
        second = await workflow.execute_activity(
            deliver, request, start_to_close_timeout=timedelta(seconds=10)
        )
        assert self._ack is not None
        assert first.delivery_id == second.delivery_id
        # The request was decoded from the (key A) history by a worker holding [B, A].
        return pb.Acknowledgement(agency_id=second.delivery_id, use=request.subjects[0].family_name)

    @workflow.update
    async def acknowledge(self, acknowledgement: pb.Acknowledgement) -> None:
        self._ack = acknowledgement

    @workflow.query
    def delivered(self) -> bool:
        return self._delivered


def client_with(env: WorkflowEnvironment, ring: KeyRing) -> Client:
    config = env.client.config()
    config["data_converter"] = data_converter(ring)
    return Client(**config)


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[RotationCase], activities=[deliver])


async def until_delivered(handle: WorkflowHandle) -> None:
    await eventually(lambda: handle.query(RotationCase.delivered), what="the case delivered")


async def test_rotation_mid_case_completes_decodes_and_replays(
    dev_server: WorkflowEnvironment,
) -> None:
    task_queue = f"rotation-{uuid.uuid4().hex[:8]}"
    request = sharing_request()
    ring_a = KeyRing.generate("key-a")

    # Started and delivered under key A; the case waits for the recipient.
    client_a = client_with(dev_server, ring_a)
    async with worker(client_a, task_queue):
        handle = await client_a.start_workflow(
            RotationCase.run, request, id=f"case-{task_queue}", task_queue=task_queue
        )
        await until_delivered(handle)

    # Operators rotate: B becomes active, A stays to decrypt; the workers restart.
    ring_ba = ring_a.with_new_key("key-b")
    client_ba = client_with(dev_server, ring_ba)
    acknowledgement = pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="dsl-7", role="dsl"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
        use="reviewed",
    )
    async with worker(client_ba, task_queue):
        handle_ba = client_ba.get_workflow_handle(handle.id, result_type=pb.Acknowledgement)
        await handle_ba.execute_update(RotationCase.acknowledge, acknowledgement)
        result = await handle_ba.result()
    assert result.agency_id == f"{request.request_id}.1"
    assert result.use == request.subjects[0].family_name

    history = await handle_ba.fetch_history()
    key_ids = {key_id_of(payload) for event in history.events for payload in _payloads(event)}
    assert key_ids == {"key-a", "key-b"}

    # The recorded history replays through the workflow code with the rotated ring ...
    replayer = Replayer(workflows=[RotationCase], data_converter=data_converter(ring_ba))
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
    # ... and not without key A: a ring that dropped it cannot read the old events.
    without_a = Replayer(
        workflows=[RotationCase], data_converter=data_converter(KeyRing(ring_ba.keys[:1]))
    )
    failed = await without_a.replay_workflow(history, raise_on_replay_failure=False)
    assert failed.replay_failure is not None
    assert "UnknownKeyError" in str(failed.replay_failure)
    # Even this failure's message went through the codec: only its type is in the clear.
    assert "Encoded failure" in str(failed.replay_failure)


def _payloads(event: Message) -> list[Payload]:
    """Every payload in a history event, found by walking its fields."""
    found: list[Payload] = []

    def walk(message: Message) -> None:
        if isinstance(message, Payload):
            found.append(message)
            return
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            values = (
                value.values()
                if field.message_type.GetOptions().map_entry
                else (value if field.is_repeated else [value])
            )
            for item in values:
                if isinstance(item, Message):
                    walk(item)

    walk(event)
    return found

"""No personal data in the clear: cases carrying canary strings in every personal and
free-text field run through the real dev stack; afterwards the canaries must appear nowhere in
Temporal's SQLite files, its search attributes, the logs, the access log, the case archive, the
UI's HTTP API (no codec), the spans every process exported over OTLP (names, attributes,
events, resources), or the school's system's tables of caveats and bases that came with an
Operation Encompass notification whose every free-text field is a canary.

The negative control runs the same with ``--no-encryption`` and must find them: a scan that
cannot see plaintext would pass vacuously. The browser check opens the UI on the encrypted
stack: decrypted through the codec server, ciphertext without it (screenshots under
``test-artifacts/``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from agency_adapters.sandbox_agency.rows import Child
from agency_adapters.sandbox_agency.seed import demo_consents, seed_store
from agency_adapters.sandbox_agency.store import SandboxStore
from protos.sharing.v1 import case_pb2 as pb
from safeshare.client import CaseClient
from safeshare.pki import DevPki
from tests.disclosure_factories import POLICE, SCHOOL, encompass
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.ops.otlp_receiver import Receiver, otlp_receiver
from tests.safeshare.test_devstack import Ports, dev_stack, free_ports
from workflows.ids import case_ref_from_workflow_id, case_workflow_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HOLDER, REQUESTER = "oakfield-primary", "riverside-gp"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Canaries:
    """Unique strings, one per personal or free-text field, fresh for every run."""

    tag: str

    def __getattr__(self, field: str) -> str:
        return f"Canary{field.replace('_', '')}{self.tag}"

    @property
    def nhs_number(self) -> str:
        return "998" + str(int(self.tag, 16) % 10**7).zfill(7)

    @property
    def date_of_birth(self) -> str:
        return f"2011-0{int(self.tag, 16) % 9 + 1}-1{int(self.tag, 16) % 9}"

    def all(self) -> dict[str, str]:
        names = ("given", "family", "postcode", "lawful_basis", "necessity", "reference",
                 "use", "feedback", "views", "relationship", "verification", "content",
                 "source", "stranger", "policeref", "place", "voice", "circumstances",
                 "disclosed")  # fmt: skip
        found = {name: getattr(self, name) for name in names}
        return {**found, "nhs_number": self.nhs_number, "date_of_birth": self.date_of_birth}


# The demo cases' fictional child and texts are personal-data stand-ins too.
DEMO_STRINGS = {
    "demo_family": "Okafor-Test",
    "demo_nhs": "9990000018",
    "demo_postcode": "ZZ99 1AA",
    "demo_use": "added to the child's assessment",
    "demo_views": "Happy for agencies to talk to each other",
}


def seed_holder(data_dir: Path, canary: Canaries) -> Child:
    """The holder's sandbox store, seeded as usual plus a canary child with consent and records
    (the dev stack seeds only an empty store, so this one is kept)."""
    store = SandboxStore(data_dir / "agencies" / f"{HOLDER}.db")
    try:
        seed_store(store, HOLDER)
        child = Child("canary", canary.given, canary.family, canary.date_of_birth,
                      canary.nhs_number, f"ZZ99 {canary.postcode}")  # fmt: skip
        consent = pb.ConsentRecord()
        consent.CopyFrom(demo_consents()["consent-given"])
        consent.views_expressed = canary.views
        consent.given_by_relationship = canary.relationship
        consent.verification = canary.verification
        item = pb.RecordItem(
            item_id=f"{HOLDER}-canary-1",
            category=pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
            kind=pb.ITEM_KIND_FACT,
            source=canary.source,
            content=canary.content,
        )
        store.add_children([child], {"canary": consent}, {"canary": [item]})
        return child
    finally:
        store.close()


def canary_request(canary: Canaries, child: Child | None) -> pb.SharingRequest:
    request = sharing_request(holding_agency_id=HOLDER)
    subject = request.subjects[0]
    if child is None:  # nobody the holder knows: closes not shared, the request still recorded
        subject.given_name, subject.family_name = canary.stranger, canary.family
        subject.date_of_birth, subject.nhs_number = canary.date_of_birth, ""
    else:
        subject.given_name, subject.family_name = child.given_name, child.family_name
        subject.date_of_birth, subject.nhs_number = child.date_of_birth, child.nhs_number
    subject.postcode = f"ZZ99 {canary.postcode}"
    request.lawful_basis = canary.lawful_basis
    request.agency_reference = canary.reference
    for category in request.categories:
        category.necessity = canary.necessity
    return request


async def run_canary_cases(pki: DevPki, ports: Ports, canary: Canaries, child: Child) -> list[str]:
    """Submit the canary cases as the GP practice; acknowledge the delivered one."""
    ids = []
    async with CaseClient.connect(f"127.0.0.1:{ports.gateway}", pki.agency(REQUESTER)) as gp:
        delivered = await gp.submit(canary_request(canary, child))
        stranger = await gp.submit(canary_request(canary, None))
        ids = [case_workflow_id(delivered.case_ref), case_workflow_id(stranger.case_ref)]
        for _ in range(240):
            view = await gp.get(delivered.case_ref)
            if view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                break
            await asyncio.sleep(0.25)
        else:
            pytest.fail(f"the canary case never delivered: {view}")
        await gp.acknowledge(
            delivered.case_ref,
            pb.Acknowledgement(
                practitioner=pb.Practitioner(user_id="gp-9", role="gp"),
                status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
                use=canary.use,
                feedback=canary.feedback,
            ),
        )
        for ref in (delivered.case_ref, stranger.case_ref):
            for _ in range(240):
                if (await gp.get(ref)).state == pb.CASE_STATE_CLOSED:
                    break
                await asyncio.sleep(0.25)
            else:
                pytest.fail(f"case {ref} never closed")
    return ids


def canary_disclosure(canary: Canaries) -> pb.Disclosure:
    """An Operation Encompass notification to the school, every free-text field a canary,
    with handling caveats (stored by the school's system beside the items)."""
    disclosure = encompass(recipients=(SCHOOL,))
    subject = disclosure.subjects[0]
    subject.given_name, subject.family_name = canary.disclosed, canary.family
    subject.date_of_birth, subject.nhs_number = canary.date_of_birth, canary.nhs_number
    oe = disclosure.operation_encompass
    oe.police_reference, oe.incident_place = canary.policeref, canary.place
    oe.voice_of_the_child, oe.circumstances = canary.voice, canary.circumstances
    disclosure.consent.without_consent.lawful_basis = canary.lawful_basis
    disclosure.consent.without_consent.reason = canary.necessity
    return disclosure


async def run_canary_disclosure(pki: DevPki, ports: Ports, canary: Canaries) -> str:
    """The police tell the school; the school acknowledges; the disclosure closes."""
    target = f"127.0.0.1:{ports.gateway}"
    async with (
        CaseClient.connect(target, pki.agency(POLICE)) as police,
        CaseClient.connect(target, pki.agency(SCHOOL)) as school,
    ):
        ref = (await police.submit_disclosure(canary_disclosure(canary))).case_ref
        for _ in range(240):
            with suppress(Exception):  # NOT_FOUND to the school until routed to it
                view = await school.get(ref)
                if view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                    break
            await asyncio.sleep(0.25)
        else:
            pytest.fail("the canary disclosure never reached the school")
        await school.acknowledge(
            ref,
            pb.Acknowledgement(
                practitioner=pb.Practitioner(user_id="dsl-9", role="designated_safeguarding_lead"),
                status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED, feedback=canary.feedback,
            ),
        )  # fmt: skip
        for _ in range(240):
            if (await police.get(ref)).state == pb.CASE_STATE_CLOSED:
                return case_workflow_id(ref)
            await asyncio.sleep(0.25)
    pytest.fail(f"the canary disclosure {ref} never closed")


def school_tables(data_dir: Path) -> dict[str, bytes]:
    """The school's system's tables of what came with each delivered item: its caveats and its
    basis (codes only; the items themselves are the school's to hold and are not scanned)."""
    with closing(sqlite3.connect(data_dir / "agencies" / f"{SCHOOL}.db")) as db:
        return {
            f"agencies/{SCHOOL}.db:{table}": repr(
                db.execute(f"SELECT * FROM {table}").fetchall()
            ).encode()
            for table in ("delivered_caveats", "delivered_bases")
        }


def school_received(data_dir: Path, case_ref: str) -> tuple[list[str], list[int]]:
    """What the school's system stored of the disclosure: the items' content and caveats."""
    with closing(sqlite3.connect(data_dir / "agencies" / f"{SCHOOL}.db")) as db:
        contents = [r[0] for r in db.execute(
            "SELECT i.content FROM delivered_items i JOIN deliveries d USING (delivery_id) "
            "WHERE d.case_ref = ?", (case_ref,),
        )]  # fmt: skip
        caveats = sorted({r[0] for r in db.execute(
            "SELECT c.caveat FROM delivered_caveats c JOIN deliveries d USING (delivery_id) "
            "WHERE d.case_ref = ?", (case_ref,),
        )})  # fmt: skip
    return contents, caveats


def _strings(value: object) -> Iterator[str]:
    """Every string in a JSON document, plus what its base64 strings decode to (payloads)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value
        with suppress(binascii.Error, ValueError):
            yield base64.b64decode(value, validate=True).decode("utf-8", errors="replace")


async def ui_api(ports: Ports, workflow_ids: list[str]) -> dict[str, str]:
    """What the UI's HTTP API serves to a browser without the codec, by path."""
    base = f"http://127.0.0.1:{ports.ui}/api/v1/namespaces/default"
    paths = [f"/workflows?query={'WorkflowType%3D%27SharingCase%27'}"]
    for workflow_id in workflow_ids:
        paths += [
            f"/workflows/{workflow_id}",
            f"/workflows/{workflow_id}/history?maximumPageSize=1000",
        ]
    served = {}
    async with aiohttp.ClientSession() as session:
        for path in paths:
            async with session.get(base + path) as response:
                assert response.status == 200, (path, await response.text())
                served[path] = "\n".join(_strings(await response.json()))
    return served


def read_files(data_dir: Path) -> dict[str, bytes]:
    """Temporal's SQLite file and the case archive's, with their -wal and -shm, and every
    process's log."""
    places = {path.name: path.read_bytes() for path in data_dir.glob("temporal.db*")}
    # The access log: who read which case, never what they read.
    places.update({path.name: path.read_bytes() for path in data_dir.glob("access.db*")})
    places.update({path.name: path.read_bytes() for path in data_dir.glob("archive.db*")})
    places.update(school_tables(data_dir))
    for log in (data_dir / "logs").glob("*.log"):
        places[f"logs/{log.name}"] = log.read_bytes()
    return places


def exported_spans(receiver: Receiver) -> dict[str, bytes]:
    """Every span exported so far, as JSON, by the process (service) that exported it."""
    by_service: dict[str, list[str]] = {}
    for span in receiver.spans:
        by_service.setdefault(span.service, []).append(json.dumps(span.raw))
    return {f"spans/{name}": "\n".join(spans).encode() for name, spans in by_service.items()}


async def scan(
    data_dir: Path, ports: Ports, ids: list[str], canaries: dict[str, str], receiver: Receiver
) -> dict[str, list[str]]:
    """Where each canary appears: Temporal's files, every log, the UI API without the codec,
    the exported spans."""
    places = await asyncio.to_thread(read_files, data_dir)
    for api_path, text in (await ui_api(ports, ids)).items():
        places[f"ui{api_path}"] = text.encode()
    await asyncio.sleep(2)  # the processes export their spans in batches every half second
    places.update(exported_spans(receiver))
    assert "temporal.db" in places and any(p.startswith("logs/") for p in places)
    assert "access.db" in places  # the canary cases' reads were recorded: the scan reads them
    assert "archive.db" in places
    assert f"agencies/{SCHOOL}.db:delivered_caveats" in places
    assert {"spans/safeshare-gateway", "spans/safeshare-hub", "spans/safeshare-adapter"} <= set(
        places
    )
    return {
        place: sorted(name for name, value in canaries.items() if value.encode() in content)
        for place, content in places.items()
        if any(value.encode() in content for value in canaries.values())
    }


async def wait_until_archived(data_dir: Path, record_ids: list[str]) -> None:
    """Until the dev stack's archiver has archived the canary cases (it sweeps every 15 s)."""
    from safeshare.archive.records import ARCHIVED
    from safeshare.archive.url import open_archive

    def known() -> dict[str, str]:
        if not (data_dir / "archive.db").exists():
            return {}
        store = open_archive(f"sqlite:///{data_dir / 'archive.db'}")
        try:
            return dict(store.known(record_ids))
        finally:
            store.close()

    await eventually(
        known,
        lambda seen: all(seen.get(r) == ARCHIVED for r in record_ids),
        what=f"the archiver archived {record_ids}",
        within=120,
        every=0.5,
    )


@dataclass
class Run:
    data_dir: Path
    ports: Ports
    ids: list[str]
    hits: dict[str, list[str]]
    canary: Canaries


@asynccontextmanager
async def running(mode: str, factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """The dev stack, tracing to a receiver here, with the demo and canary cases run through
    it, and the scan of it."""
    data_dir, ports = factory.mktemp(mode) / "data", free_ports()
    canary = Canaries(uuid.uuid4().hex[:8])
    child = seed_holder(data_dir, canary)
    extra: tuple[str, ...] = () if mode == "encrypted" else ("--no-encryption",)
    async with otlp_receiver() as receiver:
        extra += ("--otlp-endpoint", receiver.endpoint)
        async with dev_stack(data_dir, ports, *extra) as stack:
            pki = DevPki(data_dir / "dev" / "pki")
            ids = await run_canary_cases(pki, ports, canary, child)
            ids.append(await run_canary_disclosure(pki, ports, canary))
            ids += [case_workflow_id(ref) for ref in stack.demo_refs.values()]
            await wait_until_archived(data_dir, ids[:3])
            hits = await scan(data_dir, ports, ids, {**canary.all(), **DEMO_STRINGS}, receiver)
            yield Run(data_dir, ports, ids, hits, canary)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def encrypted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    async with running("encrypted", tmp_path_factory) as run:
        yield run


async def test_no_canary_appears_in_the_clear(encrypted: Run) -> None:
    assert encrypted.hits == {}
    # Not vacuous for the school's tables: the disclosure's items (canaries in the clear, the
    # school's own copy) and their caveats were stored there.
    contents, caveats = school_received(
        encrypted.data_dir, case_ref_from_workflow_id(encrypted.ids[2])
    )
    assert any(encrypted.canary.circumstances in c for c in contents), contents
    assert caveats == sorted(
        [pb.HANDLING_CAVEAT_DO_NOT_CONTACT_PARENTS_OR_CARERS, pb.HANDLING_CAVEAT_DSL_ONLY]
    )


async def test_negative_control_without_encryption_the_scan_finds_the_canaries(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    async with running("plaintext", tmp_path_factory) as run:
        hits = run.hits
    # Request, consent, records and acknowledgement all land in Temporal's store and the UI.
    assert "temporal.db" in hits or "temporal.db-wal" in hits
    stored = set(hits.get("temporal.db", [])) | set(hits.get("temporal.db-wal", []))
    # The archive holds the histories exactly as Temporal stored them: in the clear here.
    archived = set(hits.get("archive.db", [])) | set(hits.get("archive.db-wal", []))
    assert {"given", "nhs_number", "lawful_basis", "circumstances", "voice"} <= archived, hits
    for field in ("given", "nhs_number", "lawful_basis", "necessity", "views", "content", "use"):
        assert field in stored, (field, hits)
    assert any(place.startswith("ui/") and "given" in found for place, found in hits.items())


# -- the browser check -----------------------------------------------------------------------


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"CI must install Debian chromium at {CHROMIUM} (.ci/run does)")
    pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    raise AssertionError  # unreachable


async def test_ui_shows_decrypted_cases_with_the_codec_and_ciphertext_without(
    encrypted: Run,
) -> None:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    workflow_id = encrypted.ids[0]
    url = f"http://127.0.0.1:{encrypted.ports.ui}/namespaces/default/workflows/{workflow_id}"
    codec = f"http://127.0.0.1:{encrypted.ports.codec}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            for with_codec in (True, False):
                context = await browser.new_context(viewport={"width": 1400, "height": 2000})
                if not with_codec:
                    # Someone without access to the codec server: its calls never answer.
                    await context.route(f"{codec}/**", lambda route: route.abort())
                page = await context.new_page()
                await page.goto(url)
                secret = encrypted.canary.lawful_basis  # in the case's input
                # With the codec the input renders decrypted; without, the UI says the codec
                # server could not connect and shows the ciphertext's base64.
                wanted = secret if with_codec else "Codec Server could not connect"
                # The banner is in the page once the UI has tried the codec (it may be
                # collapsed, so wait for it to be attached rather than visible).
                await page.get_by_text(wanted, exact=False).first.wait_for(
                    state="visible" if with_codec else "attached", timeout=30_000
                )
                name = "ui-with-codec.png" if with_codec else "ui-without-codec.png"
                await page.screenshot(path=str(ARTIFACTS / name), full_page=True)
                content = await page.content()
                assert (secret in content) is with_codec
                await context.close()
        finally:
            await browser.close()


async def test_a_signed_in_operator_sees_a_case_decrypted_and_their_decryption_is_recorded(
    encrypted: Run,
) -> None:
    """The dev stack's local sign-in: an operator signs in at the codec server, the UI sends
    the session cookie ("include cross-origin credentials"), the case page decrypts, and the
    case's access history then names that operator's decryption of that case."""
    from playwright.async_api import async_playwright

    from safeshare.access.log import AccessLog
    from safeshare.devstack.codec_server import DEV_OPERATORS

    executable = chromium_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    workflow_id = encrypted.ids[0]
    ref = workflow_id.removeprefix("case-")
    ui = f"http://127.0.0.1:{encrypted.ports.ui}"
    codec = f"http://127.0.0.1:{encrypted.ports.codec}"
    operator = DEV_OPERATORS[0]
    log = AccessLog(encrypted.data_dir / "access.db")

    def decryptions() -> list[tuple[str, str, str]]:
        return [
            (e.user_id, e.outcome.value, e.case_ref)
            for e in log.events(ref)
            if e.action.value == "decrypt" and e.user_id == operator
        ]

    before = decryptions()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 2000})
            page = await context.new_page()
            # Sign in: the codec server sends the browser to the local provider, where the
            # operator picks themselves; the callback sets the session cookie, then the UI.
            await page.goto(f"{codec}/login")
            await page.get_by_role("button", name=operator, exact=True).click()
            await page.wait_for_url(f"{ui}/**", timeout=30_000)
            cookies = {c["name"] for c in await context.cookies(codec)}
            assert "safeshare_codec_session" in cookies
            # The UI's codec settings (kept in the browser): this endpoint, with credentials.
            await page.evaluate(
                """([endpoint]) => {
                    localStorage.setItem("endpoint", JSON.stringify(endpoint));
                    localStorage.setItem("includeCredentials", "true");
                    localStorage.setItem("overrideRemoteCodecConfiguration", "true");
                }""",
                [codec],
            )
            await page.goto(f"{ui}/namespaces/default/workflows/{workflow_id}")
            secret = encrypted.canary.lawful_basis  # in the case's input
            await page.get_by_text(secret, exact=False).first.wait_for(
                state="visible", timeout=30_000
            )
            await page.screenshot(path=str(ARTIFACTS / "ui-signed-in-operator.png"), full_page=True)
        finally:
            await browser.close()
    after = decryptions()
    assert len(after) > len(before)
    assert set(after) == {(operator, "allowed", ref)}

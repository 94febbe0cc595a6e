"""Registry writes: concurrent changes are never lost, the file has a typed schema, and a bad
edit is refused by ``safeshare registry validate`` and never stalls the protocol gate."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import shutil
import tomllib
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities.protocol_gate import ProtocolGate
from partnership.errors import RegistryError
from partnership.registry_file import DEFAULT_REGISTRY_PATH, load_registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare.cli import app
from safeshare.operators.registry_store import RegistryChangeError, renew_signature
from tests import gateway_seal
from tests.factories import sharing_request
from tests.gateway_seal import gateway_key_file
from workflows import seal
from workflows.domain.vocabulary import timestamp

SCHOOL = "oakfield-primary"
RENEWALS = 16


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    shutil.copy(DEFAULT_REGISTRY_PATH, path)
    return path


def cli(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv))
    return result.exit_code, result.output


def _renew(path: str, index: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    renew_signature(
        Path(path),
        f"ops-{index}",
        agency_id=SCHOOL,
        review_date=dt.date(2028, 1, 1) + dt.timedelta(days=index),
    )


def test_sixteen_concurrent_renewals_are_all_kept(registry_copy: Path) -> None:
    before = load_registry(registry_copy).registry_version
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(RENEWALS)
    workers = [
        context.Process(target=_renew, args=(str(registry_copy), i, barrier))
        for i in range(RENEWALS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * RENEWALS  # every one reported success

    registry = load_registry(registry_copy)
    changes = tomllib.loads(registry_copy.read_text())["changes"]
    assert registry.registry_version == before + RENEWALS
    assert sorted(c["by"] for c in changes) == sorted(f"ops-{i}" for i in range(RENEWALS))
    assert [c["registry_version"] for c in changes] == list(range(before + 1, before + 17))
    # The last change written is the one in force.
    last = changes[-1]["change"].rsplit("review ", 1)[1]
    assert registry.agencies[SCHOOL].review_date == dt.date.fromisoformat(last)


def test_a_change_against_a_stale_version_is_refused(registry_copy: Path) -> None:
    seen = load_registry(registry_copy).registry_version
    renew_signature(registry_copy, "ops-1", agency_id=SCHOOL, review_date=dt.date(2028, 1, 1))
    original = registry_copy.read_text()
    with pytest.raises(RegistryChangeError, match="someone changed it meanwhile"):
        renew_signature(registry_copy, "ops-2", agency_id=SCHOOL,
                        review_date=dt.date(2029, 1, 1), expect_version=seen)  # fmt: skip
    assert registry_copy.read_text() == original
    code, out = cli("registry", "renew", "--agency", SCHOOL, "--review-date", "2029-01-01",
                    "--by", "ops-2", "--expect-version", str(seen),
                    "--registry", str(registry_copy))  # fmt: skip
    assert code == 2 and "someone changed it meanwhile" in out and "Traceback" not in out
    code, out = cli("registry", "renew", "--agency", SCHOOL, "--review-date", "2029-01-01",
                    "--by", "ops-2", "--expect-version", str(seen + 1),
                    "--registry", str(registry_copy))  # fmt: skip
    assert code == 0, out


QUOTED_DATE = ("review_date = 2027-09-30", 'review_date = "2027-09-30"')


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (QUOTED_DATE, "review_date must be a date"),
        (('kind = "statutory"', 'kind = "charity"'), "kind 'charity' is not one of"),
        (("registry_version = 1", "registry_version = true"), "registry_version must be an integer"),
        (('name = "Oakfield Primary School"', 'nmae = "Oakfield Primary School"'), "unknown key 'nmae'"),
    ],
)  # fmt: skip
def test_validate_refuses_a_badly_typed_edit_in_one_line(
    registry_copy: Path, edit: tuple[str, str], says: str
) -> None:
    text = registry_copy.read_text()
    assert edit[0] in text
    registry_copy.write_text(text.replace(edit[0], edit[1], 1))
    for command in ("validate", "show"):
        code, out = cli("registry", command, "--registry", str(registry_copy))
        assert code == 2 and says in out, out
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_an_unbound_commissioned_provider_is_refused_naming_it(registry_copy: Path) -> None:
    registry_copy.write_text(
        registry_copy.read_text()
        + '\n[[agencies]]\nid = "bright-futures"\nname = "Bright Futures"\n'
        'kind = "commissioned"\nsigned_protocol_version = "2026.1"\nreview_date = 2027-09-30\n'
    )
    code, out = cli("registry", "validate", "--registry", str(registry_copy))
    assert (
        code == 2 and "'bright-futures' is a commissioned provider bound to no commissioner" in out
    )
    with pytest.raises(RegistryError) as refused:
        load_registry(registry_copy)
    assert refused.value.agency_id == "bright-futures" and refused.value.code == "binding"


def test_a_bad_edit_never_stalls_the_gate_it_keeps_the_last_good_registry(
    registry_copy: Path,
) -> None:
    gate = _Gate(registry_copy)
    check = pb.GateCheck(request=sharing_request(), at=timestamp(dt.datetime.now(dt.UTC)))
    first = gate.check(check)
    assert first.passed
    # Hand-edited to a quoted date (which used to crash the gate's date comparison), then to
    # an unbound provider: each check still answers, on the last good registry, and says why.
    for broken in (
        registry_copy.read_text().replace(*QUOTED_DATE, 1),
        registry_copy.read_text().replace('kind = "statutory"', 'kind = "contracted"', 1),
    ):
        registry_copy.write_text(broken)
        with capture_logs() as logs:
            result = gate.check(check)
            again = gate.check(check)
        assert result.passed and again.passed
        assert result.registry_version == first.registry_version
        refused = [entry for entry in logs if entry["event"] == "registry_reload_refused"]
        assert len(refused) == 1  # once per edit, not once per check
        assert refused[0]["agency_id"] == "northshire-csc"
    # Fixed: the next check uses the new version.
    renewed = renew_signature(
        _restore(registry_copy), "ops-1",
        agency_id=SCHOOL, review_date=dt.date(2029, 1, 1),
    )  # fmt: skip
    assert (gate.check(check)).registry_version == renewed.registry_version


class _Gate:
    """The hub's gate activity, called as the worker calls it (in an activity's context, for
    a request the tests' gateway sealed)."""

    def __init__(self, path: Path) -> None:
        self._gate = ProtocolGate(path, gateway_key_file())
        self._env = ActivityEnvironment()

    def check(self, check: pb.GateCheck) -> pb.GateResult:
        sealed = pb.GateCheck()
        sealed.CopyFrom(check)
        sealed.request.CopyFrom(
            gateway_seal.sealed(check.request, self._env.info.workflow_id or "", seal.START)
        )
        return asyncio.run(self._env.run(self._gate.check, sealed))


def _restore(path: Path) -> Path:
    shutil.copy(DEFAULT_REGISTRY_PATH, path)
    return path


def test_a_change_keeps_every_key_of_the_file(registry_copy: Path) -> None:
    before = tomllib.loads(registry_copy.read_text())
    renew_signature(registry_copy, "ops-1", agency_id=SCHOOL, review_date=dt.date(2029, 1, 1))
    after = tomllib.loads(registry_copy.read_text())
    for key in set(before) - {"registry_version", "changes", "agencies"}:
        assert after[key] == before[key], key


def test_a_change_keeps_every_agency_key(registry_copy: Path) -> None:
    before = tomllib.loads(registry_copy.read_text())["agencies"]
    renew_signature(registry_copy, "ops-1", agency_id=SCHOOL, review_date=dt.date(2029, 1, 1))
    after = tomllib.loads(registry_copy.read_text())["agencies"]
    for old, new in zip(before, after, strict=True):
        assert set(new) == set(old)

"""One Temporal connection configuration for every command: Temporal's own profiles (TOML file,
``TEMPORAL_*`` variables) with each command's flags on top, and one readable line when it is
broken."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from temporalio.envconfig import ClientConfigTLS
from temporalio.service import TLSConfig
from typer.testing import CliRunner

from safeshare.cli import app
from safeshare.temporal import TemporalConfigError, load_temporal_settings
from safeshare.temporal_options import TemporalFlags
from tests.safeshare.test_cli import assert_one_line_error

PROFILES = """
[profile.default]
address = "temporal.local:7233"

[profile.cluster]
address = "frontend.partnership.example:7233"
namespace = "safeshare-prod"

[profile.cluster.tls]
server_name = "frontend.partnership.example"
server_ca_cert_path = "{ca}"
client_cert_path = "{cert}"
client_key_path = "{key}"

[profile.cloud]
address = "safeshare.a1b2c.tmprl.cloud:7233"
namespace = "safeshare.a1b2c"
api_key = "not-a-real-key"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(f"{name} pem\n")
    path = tmp_path / "temporal.toml"
    path.write_text(
        PROFILES.format(
            ca=tmp_path / "ca.pem", cert=tmp_path / "cert.pem", key=tmp_path / "key.pem"
        )
    )
    return path


def test_with_nothing_configured_it_is_the_local_dev_server_and_says_so(tmp_path: Path) -> None:
    settings = load_temporal_settings(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert (settings.address, settings.namespace) == ("127.0.0.1:7233", "default")
    assert settings.tls is None and settings.api_key is None
    assert settings.tls_config() is False
    assert "defaults" in settings.source


def test_a_profile_gives_address_namespace_and_mtls_files(config_file: Path) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cluster"}
    settings = load_temporal_settings(env=env)
    assert settings.address == "frontend.partnership.example:7233"
    assert settings.namespace == "safeshare-prod"
    assert "'cluster'" in settings.source
    tls = settings.tls_config()
    assert isinstance(tls, TLSConfig)
    assert tls.domain == "frontend.partnership.example"
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key) == (
        b"ca pem\n", b"cert pem\n", b"key pem\n",
    )  # fmt: skip


def test_the_dev_stack_profile_in_this_folder_is_read_when_nothing_else_is_configured(
    tmp_path: Path,
) -> None:
    dev = tmp_path / ".safeshare" / "dev"
    dev.mkdir(parents=True)
    (dev / "temporal.toml").write_text(
        '[profile.default]\naddress = "127.0.0.1:17233"\nnamespace = "devstack"\n'
    )
    settings = load_temporal_settings(env={"HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert (settings.address, settings.namespace) == ("127.0.0.1:17233", "devstack")
    assert str(dev / "temporal.toml") in settings.source

    # Temporal's own configuration, where it is given, comes first.
    own = tmp_path / "home" / ".config" / "temporalio"
    own.mkdir(parents=True)
    (own / "temporal.toml").write_text('[profile.default]\naddress = "mine.example:7233"\n')
    assert (
        load_temporal_settings(env={"HOME": str(tmp_path / "home")}, cwd=tmp_path).address
        == "mine.example:7233"
    )
    assert (
        load_temporal_settings(
            env={"HOME": str(tmp_path / "home"), "TEMPORAL_ADDRESS": "env.example:7233"},
            cwd=tmp_path,
        ).address
        == "env.example:7233"
    )


def test_profile_and_api_key_flags_choose_the_profile_and_override_its_key(
    config_file: Path,
) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "default"}
    flags = TemporalFlags(profile="cloud", api_key="flag-key")
    settings = flags.settings(env=env)
    assert (settings.address, settings.namespace) == (
        "safeshare.a1b2c.tmprl.cloud:7233", "safeshare.a1b2c",
    )  # fmt: skip
    assert settings.api_key == "flag-key"
    assert settings.tls_config() is True
    assert "'cloud'" in settings.source
    with pytest.raises(TemporalConfigError, match="nope"):
        TemporalFlags(profile="nope").settings(env=env)


def _options(command: Any) -> set[str]:
    return {name for param in command.params for name in getattr(param, "opts", [])}


def _commands(group: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if hasattr(group, "commands"):
        for name, sub in group.commands.items():
            yield from _commands(sub, f"{path} {name}".strip())
    else:
        yield path, group


def test_every_command_that_reaches_temporal_takes_the_one_option_set() -> None:
    reaching = {
        path: _options(command)
        for path, command in _commands(typer.main.get_command(app))
        if "--temporal-address" in _options(command)
    }
    expected = {
        "hub", "gateway", "adapter", "archive run", "audit export", "audit replay",
        "audit report", "cases list", "cases show", "cases follow", "ops deploy status",
        "ops deploy set-current", "ops deploy retire", "review run", "review schedule",
    }  # fmt: skip
    assert expected <= set(reaching), sorted(expected - set(reaching))
    flags = {
        "--temporal-address", "--namespace", "--temporal-profile", "--temporal-api-key",
        "--temporal-ca", "--temporal-cert", "--temporal-key",
    }  # fmt: skip
    for path, options in reaching.items():
        assert flags <= options, (path, sorted(flags - options))


def test_an_api_key_profile_connects_over_tls(config_file: Path) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cloud"}
    settings = load_temporal_settings(env=env)
    assert settings.api_key == "not-a-real-key"
    assert settings.namespace == "safeshare.a1b2c"
    assert settings.tls_config() is True  # system roots; never a key in the clear


def test_environment_variables_override_the_file(config_file: Path) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_ADDRESS": "other:7233",
           "TEMPORAL_NAMESPACE": "ns"}  # fmt: skip
    settings = load_temporal_settings(env=env)
    assert (settings.address, settings.namespace) == ("other:7233", "ns")


def test_flags_override_the_profile_and_keep_its_server_name(
    config_file: Path, tmp_path: Path
) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), "TEMPORAL_PROFILE": "cluster"}
    mine = tmp_path / "mine.pem"
    mine.write_text("mine\n")
    settings = load_temporal_settings(
        address="127.0.0.1:7444", namespace="x", cert=mine, key=mine, env=env
    )
    assert (settings.address, settings.namespace, settings.source) == (
        "127.0.0.1:7444",
        "x",
        "flags",
    )
    assert isinstance(settings.tls, ClientConfigTLS)
    tls = settings.tls_config()
    assert isinstance(tls, TLSConfig)
    assert tls.domain == "frontend.partnership.example"
    assert tls.client_cert == b"mine\n" and tls.server_root_ca_cert is None


@pytest.mark.parametrize(
    ("env", "kwargs", "says"),
    [
        ({"TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml"}, {}, "no such file"),
        ({"TEMPORAL_PROFILE": "nope"}, {}, "nope"),
        ({}, {"cert": Path("/x")}, "go together"),
    ],
)
def test_a_configuration_that_cannot_work_is_refused(
    env: dict[str, str], kwargs: dict[str, Path], says: str, config_file: Path
) -> None:
    env = {"TEMPORAL_CONFIG_FILE": str(config_file), **env}
    with pytest.raises(TemporalConfigError, match=says):
        load_temporal_settings(env=env, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        # The hub's own required option first, so the Temporal settings are what it refuses.
        ["hub", "--gateway-key", "/nonexistent/gateway.pub", "--temporal-cert", "/x/cert.pem"],
        ["cases", "list"],
        ["audit", "replay", "--case", "0123456789abcdef"],
    ],
)
def test_every_command_reads_the_same_configuration_and_refuses_in_one_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFESHARE_PLAINTEXT_PAYLOADS", "1")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", "/nonexistent/temporal.toml")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    line = assert_one_line_error(result.output)
    assert "go together" in line or "TEMPORAL_CONFIG_FILE" in line

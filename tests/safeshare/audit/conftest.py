"""Fixtures for the audit tools: signing keys, and an export of the committed replay corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from safeshare.audit.export import write_export
from safeshare.audit.signing import ensure_signing_key, load_private_key, public_key_path
from tests.safeshare.audit.audit_support import corpus_histories


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Ed25519 signing key (0600) with its .pub beside it, as the dev stack makes them."""
    path = tmp_path_factory.mktemp("keys") / "audit-signing.key"
    ensure_signing_key(path)
    return path


@pytest.fixture(scope="session")
def public_key(signing_key: Path) -> Path:
    return public_key_path(signing_key)


@pytest.fixture(scope="session")
def corpus_export_master(tmp_path_factory: pytest.TempPathFactory, signing_key: Path) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "export"
    write_export(folder, corpus_histories(), load_private_key(signing_key),
                 namespace="default", selection="the replay corpus")  # fmt: skip
    return folder


@pytest.fixture
def corpus_export(corpus_export_master: Path, tmp_path: Path) -> Path:
    """A fresh copy of the signed export of the whole corpus, free to tamper with."""
    return Path(shutil.copytree(corpus_export_master, tmp_path / "export"))

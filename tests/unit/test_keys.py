"""API keys: hashing, scopes, the Authenticator and the local dev key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conveyor.jobs import utcnow
from conveyor.keys import (
    SCOPES,
    Authenticator,
    Principal,
    check_scopes,
    create_key,
    ensure_dev_key,
    expand_scopes,
    generate_key,
    hash_key,
)
from conveyor.settings import Settings, load_settings
from conveyor.store.memory import MemoryStore

ENV_KEY = "env-configured-key-0123456789"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "broker_url": "memory://",
        "database_url": "memory://",
        **overrides,
    }
    return load_settings(**values)


def test_generated_keys_are_prefixed_random_and_long() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith("cvk_")
        assert len(key) >= 4 + 43


def test_hash_is_sha256_hex_and_verifies() -> None:
    key = generate_key()
    digest = hash_key(key)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == hash_key(key)
    assert digest != hash_key(key + "x")
    assert key not in digest


def test_scopes_imply_each_other() -> None:
    assert expand_scopes(["admin"]) == frozenset(SCOPES)
    assert expand_scopes(["write"]) == {"read", "write"}
    assert expand_scopes(["read"]) == {"read"}
    assert expand_scopes(["bogus"]) == frozenset()


def test_check_scopes_orders_and_refuses_unknown_or_empty() -> None:
    assert check_scopes(["admin", "read"]) == ("read", "admin")
    with pytest.raises(ValueError, match="unknown scope"):
        check_scopes(["read", "root"])
    with pytest.raises(ValueError, match="at least one scope"):
        check_scopes([])


def test_create_key_stores_only_hash_and_display_prefix(tmp_path: Path) -> None:
    store = MemoryStore()
    plain, record = create_key(store, "ci", ["write"])
    [stored] = store.list_api_keys()
    assert stored == record
    assert stored.key_hash == hash_key(plain)
    assert stored.prefix == plain[:8]
    assert stored.scopes == ("write",)
    assert stored.name == "ci"
    assert plain not in repr(stored)


def test_create_key_refuses_bad_input() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError):
        create_key(store, "x", ["superuser"])
    with pytest.raises(ValueError):
        create_key(store, "  ", ["read"])
    assert store.list_api_keys() == []


def test_authenticator_accepts_stored_key_with_expanded_scopes(tmp_path: Path) -> None:
    store = MemoryStore()
    plain, _ = create_key(store, "writer", ["write"])
    auth = Authenticator(make_settings(tmp_path), store)
    principal = auth.authenticate(plain)
    assert principal == Principal("writer", frozenset({"read", "write"}))
    assert principal.allows("read")
    assert not principal.allows("admin")


def test_authenticator_accepts_configured_key_with_all_scopes(tmp_path: Path) -> None:
    auth = Authenticator(make_settings(tmp_path, api_keys=[ENV_KEY]), MemoryStore())
    principal = auth.authenticate(ENV_KEY)
    assert principal is not None
    assert principal.scopes == frozenset(SCOPES)


@pytest.mark.parametrize("candidate", ["", "cvk_unknown", ENV_KEY + "x", ENV_KEY[:-1]])
def test_authenticator_refuses_unknown_keys(tmp_path: Path, candidate: str) -> None:
    store = MemoryStore()
    create_key(store, "someone", ["admin"])
    auth = Authenticator(make_settings(tmp_path, api_keys=[ENV_KEY]), store)
    assert auth.authenticate(candidate) is None


def test_revoked_key_is_refused(tmp_path: Path) -> None:
    store = MemoryStore()
    plain, record = create_key(store, "old", ["read"])
    auth = Authenticator(make_settings(tmp_path), store)
    assert auth.authenticate(plain) is not None
    assert store.revoke_api_key(record.id, utcnow())
    assert auth.authenticate(plain) is None


def test_has_keys(tmp_path: Path) -> None:
    store = MemoryStore()
    settings = make_settings(tmp_path)
    assert not Authenticator(settings, store).has_keys()
    assert Authenticator(make_settings(tmp_path, api_keys=[ENV_KEY]), store).has_keys()
    _, record = create_key(store, "k", ["read"])
    assert Authenticator(settings, store).has_keys()
    store.revoke_api_key(record.id, utcnow())
    assert not Authenticator(settings, store).has_keys()


def test_ensure_dev_key_creates_private_file_and_reuses_it(tmp_path: Path) -> None:
    store = MemoryStore()
    settings = make_settings(tmp_path)
    key = ensure_dev_key(settings, store)
    assert key is not None
    assert key.startswith("cvk_")
    path = settings.dev_key_file
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [stored] = store.list_api_keys()
    assert stored.name == "dev"
    assert stored.key_hash == hash_key(key)
    assert set(stored.scopes) == set(SCOPES)
    principal = Authenticator(settings, store).authenticate(key)
    assert principal is not None
    assert principal.allows("admin")

    assert ensure_dev_key(settings, store) == key
    assert len(store.list_api_keys()) == 1


def test_ensure_dev_key_is_private_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = ensure_dev_key(make_settings(tmp_path), MemoryStore())
    finally:
        os.umask(old)
    assert key is not None
    path = make_settings(tmp_path).dev_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ensure_dev_key_replaces_a_stale_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.dev_key_file.parent.mkdir(parents=True)
    settings.dev_key_file.write_text("cvk_not-a-stored-key\n")
    settings.dev_key_file.chmod(0o644)
    store = MemoryStore()
    key = ensure_dev_key(settings, store)
    assert key is not None
    assert key != "cvk_not-a-stored-key"
    assert settings.dev_key_file.read_text().strip() == key
    assert stat.S_IMODE(settings.dev_key_file.stat().st_mode) == 0o600


def test_ensure_dev_key_after_revocation_creates_a_new_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = MemoryStore()
    first = ensure_dev_key(settings, store)
    [record] = store.list_api_keys()
    store.revoke_api_key(record.id, utcnow())
    second = ensure_dev_key(settings, store)
    assert second is not None
    assert second != first


def test_ensure_dev_key_not_generated_when_keys_are_configured(tmp_path: Path) -> None:
    store = MemoryStore()
    assert ensure_dev_key(make_settings(tmp_path, api_keys=[ENV_KEY]), store) is None
    create_key(store, "mine", ["admin"])
    settings = make_settings(tmp_path)
    assert ensure_dev_key(settings, store) is None
    assert not settings.dev_key_file.exists()


def test_ensure_dev_key_never_in_production(tmp_path: Path) -> None:
    store = MemoryStore()
    settings = make_settings(tmp_path, env="production")
    assert ensure_dev_key(settings, store) is None
    assert store.list_api_keys() == []
    assert not settings.dev_key_file.exists()


def test_generated_dev_key_is_refused_in_production(tmp_path: Path) -> None:
    store = MemoryStore()
    dev = load_settings(data_dir=tmp_path, database_url="memory://")
    plain = ensure_dev_key(dev, store)
    assert plain is not None
    assert Authenticator(dev, store).authenticate(plain) is not None
    prod = load_settings(data_dir=tmp_path, database_url="memory://", env="production")
    assert Authenticator(prod, store).authenticate(plain) is None
    assert not Authenticator(prod, store).has_keys()

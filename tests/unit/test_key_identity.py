"""A static key's tenant: its name, or a digest of the key - never its position in the
settings, and never the key itself (auth.py)."""

from __future__ import annotations

import pytest

from llm_backend.auth import KeyEntryError, Keyring, derived_owner


def owner(keyring: Keyring, key: str) -> str:
    return keyring.authenticate(f"Bearer {key}").owner


def test_a_named_key_is_owned_by_its_name():
    assert owner(Keyring(["alice=sk-alice-1"]), "sk-alice-1") == "alice"


def test_an_unnamed_keys_owner_is_the_same_wherever_it_is_listed():
    first, moved = Keyring(["sk-one", "sk-two"]), Keyring(["sk-new", "sk-two", "sk-one"])
    assert owner(first, "sk-one") == owner(moved, "sk-one") == derived_owner("sk-one")
    assert owner(first, "sk-two") == owner(moved, "sk-two") != owner(moved, "sk-new")


def test_a_derived_owner_does_not_show_the_key():
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    name = derived_owner(key)
    assert name.startswith("key-") and len(name) == 20
    assert not any(key[i : i + 6] in name for i in range(len(key) - 5))


def test_keys_sharing_a_name_share_a_tenant():
    keyring = Keyring(["alice=sk-old", "alice=sk-new"])
    assert owner(keyring, "sk-old") == owner(keyring, "sk-new") == "alice"


def test_an_admin_key_is_a_tenant_like_any_other():
    keyring = Keyring(["sk-both"], ["ops=sk-admin", "sk-both"])
    assert keyring.authenticate("Bearer sk-admin").admin and owner(keyring, "sk-admin") == "ops"
    both = keyring.authenticate("Bearer sk-both")
    assert both.admin and both.owner == derived_owner("sk-both")


def test_the_positional_owners_of_older_versions_map_to_todays():
    keyring = Keyring(["sk-a", "bob=sk-b"], ["ops=sk-admin"])
    assert keyring.legacy_owners() == {"key-0": derived_owner("sk-a"), "key-1": "bob", "admin-0": "ops"}


@pytest.mark.parametrize(
    "entry",
    ["=sk-nameless", "key-1=sk-reserved", "admin-0=sk-reserved", "apikey_x=sk-reserved", "anonymous=sk-x",
     "two words=sk-x", "c2stc2VjcmV0==", "alice="],
)
def test_an_unusable_entry_is_refused_without_showing_the_key(entry):
    with pytest.raises(KeyEntryError) as raised:
        Keyring(["sk-fine", entry])
    message = str(raised.value)
    assert "LLM_BACKEND_API_KEYS, entry 2" in message
    assert "sk-" not in message and "c2st" not in message


def test_one_key_under_two_owners_is_refused():
    with pytest.raises(KeyEntryError, match="LLM_BACKEND_ADMIN_KEYS, entry 1"):
        Keyring(["alice=sk-shared"], ["ops=sk-shared"])

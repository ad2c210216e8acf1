"""The active model is a user's choice; the server default changes only by an explicit call."""

from __future__ import annotations

import pytest

from xrfcore.active_model import (clear_user_model, resolve_model, server_default_model, set_server_default_model,
                                  set_user_model, user_model)
from xrfcore.errors import ModelError


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("XRF_USER_DIR", str(tmp_path / "user"))
    shipped = tmp_path / "shipped.keras"
    shipped.write_bytes(b"x")
    monkeypatch.setenv("XRF_DEFAULT_MODEL", str(shipped))
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    return shipped, a, b


def test_one_users_choice_does_not_change_another_users(models):
    shipped, a, b = models
    assert resolve_model(user="ann") == resolve_model(user="bob") == server_default_model() == shipped.resolve()
    set_user_model(a, user="ann")
    assert resolve_model(user="ann") == a.resolve()
    assert resolve_model(user="bob") == shipped.resolve()
    assert resolve_model() == shipped.resolve()
    assert resolve_model(b, user="ann") == b.resolve(), "the session's choice wins"
    clear_user_model("ann")
    assert user_model("ann") is None and resolve_model(user="ann") == shipped.resolve()


def test_server_default_is_a_separate_explicit_action(models):
    shipped, a, b = models
    set_user_model(a, user="ann")
    assert set_server_default_model(b) == b.resolve()
    assert resolve_model(user="bob") == b.resolve() and resolve_model(user="ann") == a.resolve()
    b.unlink()  # a vanished default falls back to the shipped one
    assert server_default_model() == shipped.resolve()
    assert set_server_default_model(None) == shipped.resolve()


def test_bad_choices_are_refused(models, tmp_path):
    with pytest.raises(ModelError, match="not an existing .keras"):
        set_user_model(tmp_path / "missing.keras", user="ann")
    with pytest.raises(ModelError, match="user name"):
        set_user_model(models[1], user="../")

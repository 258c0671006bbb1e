"""The one settings object, from LEVERET_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.errors import ConfigurationError
from leveret.jobs.settings import QueueType, Settings, mask_url


def test_defaults() -> None:
    settings = Settings()
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.store_url == "sqlite:///./data/leveret.db"
    assert settings.namespace == "leveret"
    assert settings.http == "127.0.0.1:8080"
    assert settings.api_keys_file is None
    assert settings.queues == ("default",)
    assert settings.queue_type is QueueType.CLASSIC
    assert settings.concurrency == 8
    assert settings.prefetch is None
    assert settings.shutdown_timeout == 30.0
    assert settings.default_timeout <= settings.consumer_timeout


def test_empty_environment_gives_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_environment_is_parsed() -> None:
    settings = Settings.from_env(
        {
            "LEVERET_AMQP_URL": "amqp://u:p@rabbit:5672/vh",
            "LEVERET_STORE_URL": "mongodb://mongo:27017/leveret",
            "LEVERET_NAMESPACE": "staging-1",
            "LEVERET_HTTP": "0.0.0.0:9000",
            "LEVERET_API_KEYS_FILE": "/etc/leveret/keys",
            "LEVERET_QUEUES": " emails, reports ,,media ",
            "LEVERET_QUEUE_TYPE": "Quorum",
            "LEVERET_DELIVERY_LIMIT": "5",
            "LEVERET_CONCURRENCY": "3",
            "LEVERET_PREFETCH": "4",
            "LEVERET_SHUTDOWN_TIMEOUT": "1m30s",
            "LEVERET_PUBLISH_TIMEOUT": "500ms",
            "LEVERET_DEFAULT_TIMEOUT": "2.5",
            "LEVERET_CONSUMER_TIMEOUT": "1h",
            "OTHER_VARIABLE": "ignored",
        }
    )
    assert settings.amqp_url == "amqp://u:p@rabbit:5672/vh"
    assert settings.store_url == "mongodb://mongo:27017/leveret"
    assert settings.namespace == "staging-1"
    assert settings.http == "0.0.0.0:9000"
    assert settings.api_keys_file == "/etc/leveret/keys"
    assert settings.queues == ("emails", "reports", "media")
    assert settings.queue_type is QueueType.QUORUM
    assert settings.delivery_limit == 5
    assert settings.concurrency == 3
    assert settings.prefetch == 4
    assert settings.shutdown_timeout == 90.0
    assert settings.publish_timeout == 0.5
    assert settings.default_timeout == 2.5
    assert settings.consumer_timeout == 3600.0


def test_empty_variables_are_ignored() -> None:
    assert Settings.from_env({"LEVERET_CONCURRENCY": "", "LEVERET_QUEUES": ""}) == Settings()


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVERET_NAMESPACE", "from-os")
    monkeypatch.setenv("LEVERET_CONCURRENCY", "5")
    settings = Settings.from_env()
    assert (settings.namespace, settings.concurrency) == ("from-os", 5)


def test_flags_override_the_environment() -> None:
    env = {"LEVERET_CONCURRENCY": "3", "LEVERET_NAMESPACE": "env", "LEVERET_QUEUES": "a"}
    settings = Settings.from_env(env, concurrency=12, namespace="flag", queues="b,c")
    assert settings.concurrency == 12
    assert settings.namespace == "flag"
    assert settings.queues == ("b", "c")


def test_string_flags_are_parsed_like_the_environment() -> None:
    settings = Settings.from_env(
        {}, concurrency="6", shutdown_timeout="2m", queue_type="quorum", prefetch="1"
    )
    assert settings.concurrency == 6
    assert settings.shutdown_timeout == 120.0
    assert settings.queue_type is QueueType.QUORUM
    assert settings.prefetch == 1


def test_none_flags_are_ignored() -> None:
    env = {"LEVERET_CONCURRENCY": "3", "LEVERET_NAMESPACE": "staging"}
    settings = Settings.from_env(env, concurrency=None, namespace=None, prefetch=None)
    assert settings.concurrency == 3
    assert settings.namespace == "staging"
    assert settings.prefetch is None


@pytest.mark.parametrize("flag", ["concurency", "effective_prefetch", "amqp", "AMQP_URL"])
def test_unknown_flag_is_a_configuration_error(flag: str) -> None:
    with pytest.raises(ConfigurationError, match=flag):
        Settings.from_env({}, **{flag: "x"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEVERET_CONCURRENCY", "many"),
        ("LEVERET_CONCURRENCY", "2.5"),
        ("LEVERET_PREFETCH", "ten"),
        ("LEVERET_DELIVERY_LIMIT", "x"),
        ("LEVERET_SHUTDOWN_TIMEOUT", "soon"),
        ("LEVERET_PUBLISH_TIMEOUT", "-1"),
        ("LEVERET_DEFAULT_TIMEOUT", "1h30"),
        ("LEVERET_CONSUMER_TIMEOUT", "inf"),
        ("LEVERET_QUEUE_TYPE", "stream"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("LEVERET_CONCURRENCY", "0", "concurrency"),
        ("LEVERET_CONCURRENCY", "-2", "concurrency"),
        ("LEVERET_PREFETCH", "0", "prefetch"),
        ("LEVERET_NAMESPACE", "my namespace", "namespace"),
        ("LEVERET_NAMESPACE", "a/b", "namespace"),
        ("LEVERET_DEFAULT_TIMEOUT", "1h", "default_timeout"),
    ],
)
def test_out_of_range_values_name_the_setting(variable: str, value: str, setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        Settings.from_env({variable: value})


def test_invalid_flag_value_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="CONCURRENCY"):
        Settings.from_env({}, concurrency="lots")
    with pytest.raises(ConfigurationError, match="concurrency"):
        Settings.from_env({}, concurrency=0)


def test_configuration_error_is_not_a_traceback_of_value_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"LEVERET_CONCURRENCY": "many"})
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_repr_masks_passwords() -> None:
    settings = Settings(
        amqp_url="amqp://worker:rabbit-secret@rabbit:5672/prod",
        store_url="mongodb://app:mongo%40secret@m1:27017,m2:27017/leveret?authSource=admin",
    )
    shown = repr(settings)
    assert "rabbit-secret" not in shown
    assert "mongo%40secret" not in shown
    assert "mongo@secret" not in shown
    assert "amqp://worker:***@rabbit:5672/prod" in shown
    assert "mongodb://app:***@m1:27017,m2:27017/leveret?authSource=admin" in shown
    assert str(settings) == shown
    assert shown.startswith("Settings(")
    assert "namespace='leveret'" in shown


def test_repr_of_the_defaults_masks_guest() -> None:
    shown = repr(Settings())
    assert "guest:guest" not in shown
    assert "amqp://guest:***@127.0.0.1:5672/" in shown
    assert "sqlite:///./data/leveret.db" in shown


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://u:p@host/", "amqp://u:***@host/"),
        ("amqp://u:p@ss@host/", "amqp://u:***@host/"),
        ("amqp://:token@host/", "amqp://:***@host/"),
        ("amqp://u:@host/", "amqp://u:***@host/"),
        ("amqp://u@host/", "amqp://u@host/"),
        ("amqp://host/", "amqp://host/"),
        ("sqlite:///./data/leveret.db", "sqlite:///./data/leveret.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@given(st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=", min_size=6))
def test_repr_never_shows_a_password(secret: str) -> None:
    password = f"Zq{secret}"
    settings = Settings(
        amqp_url=f"amqp://user:{password}@rabbit:5672/", store_url=f"mongodb://a:{password}@m/db"
    )
    assert password not in repr(settings)


def test_effective_prefetch_is_twice_the_concurrency_by_default() -> None:
    assert Settings().effective_prefetch == 16
    assert Settings(concurrency=3).effective_prefetch == 6
    assert Settings(concurrency=3, prefetch=1).effective_prefetch == 1
    assert Settings.from_env({"LEVERET_CONCURRENCY": "5"}).effective_prefetch == 10


def test_is_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.concurrency = 99  # type: ignore[misc]
    assert settings.concurrency == 8

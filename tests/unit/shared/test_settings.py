"""Settings: defaults, every bad variable named at once, and no secret in ``repr``."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from shared.settings import (
    Settings,
    SettingsError,
    environment_variables,
    integer,
    load_settings,
    parse_environment,
    setting,
)


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.port == 8000
    assert settings.webhook_api_keys == ()
    assert settings.webhook_auth_disabled is False
    assert settings.cxone_auth_url == "https://cxone.niceincontact.com"
    assert settings.cxone_api_url is None
    assert settings.cxone_rate_limit_per_minute == 100
    assert settings.cxone_token_refresh_margin_seconds == 600
    assert settings.routing_max_countdown_seconds == 30
    assert settings.broker_visibility_timeout_seconds == 60
    assert settings.log_level == "INFO"
    # NICE's grant for back-end integrations, whatever else is set (never a silent switch).
    assert settings.cxone_grant_type == "password"
    assert settings.cxone_trusted_hosts == (
        "niceincontact.com",
        "nice-incontact.com",
        "nicecxone.com",
        "nicecxone-gov.com",
    )


def test_blank_values_count_as_unset() -> None:
    assert Settings.from_env({"PORT": "  ", "CXONE_API_URL": ""}) == Settings()


def test_values_are_parsed_and_normalised() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "rediss://redis.internal:6380/2",
            "PORT": " 9000 ",
            "WEBHOOK_AUTH_DISABLED": "Yes",
            "CXONE_AUTH_URL": "https://cxone.niceincontact.com/",
            "CXONE_API_URL": "https://api-eu1.niceincontact.com/",
            "CXONE_ACCESS_KEY_ID": "key-id",
            "CXONE_READ_TIMEOUT_SECONDS": "2.5",
            "LOG_LEVEL": "debug",
        }
    )

    assert settings.redis_url == "rediss://redis.internal:6380/2"
    assert settings.port == 9000
    assert settings.webhook_auth_disabled is True
    assert settings.cxone_auth_url == "https://cxone.niceincontact.com"  # no trailing slash
    assert settings.cxone_api_url == "https://api-eu1.niceincontact.com"
    assert settings.cxone_read_timeout_seconds == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.cxone_grant_type == "password"


def test_load_settings_reads_the_mapping_it_is_given() -> None:
    assert load_settings({"PORT": "8123"}).port == 8123


def test_csv_keys_are_trimmed_and_empty_items_dropped() -> None:
    settings = Settings.from_env({"WEBHOOK_API_KEYS": " key-one ,key-two,, ,key-three "})

    assert settings.webhook_api_keys == ("key-one", "key-two", "key-three")


def test_every_malformed_variable_is_named_in_one_error() -> None:
    env = {
        "PORT": "eighty",
        "REDIS_URL": "http://redis:6379",
        "WEBHOOK_AUTH_DISABLED": "maybe",
        "CXONE_API_URL": "api.niceincontact.com",
        "CXONE_RATE_LIMIT_PER_MINUTE": "0",
        "CXONE_READ_TIMEOUT_SECONDS": "soon",
        "WORKER_CONCURRENCY": "1000",
        "LOG_LEVEL": "LOUD",
    }

    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)

    message = str(caught.value)
    for name in env:
        assert name in message, f"{name} is not named in: {message}"
    assert "PORT='eighty' is not an integer" in message
    assert "CXONE_RATE_LIMIT_PER_MINUTE=0 must be at least 1" in message
    assert "WORKER_CONCURRENCY=1000 must be at most 512" in message
    assert "LOG_LEVEL='LOUD' must be one of DEBUG, INFO, WARNING, ERROR" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "0"),
        ("PORT", "65536"),
        ("WEBHOOK_MAX_BODY_BYTES", "1023"),
        ("ROUTING_STATUS_TTL_SECONDS", "59"),
        ("BROKER_VISIBILITY_TIMEOUT_SECONDS", "9"),
        ("CXONE_CONNECT_TIMEOUT_SECONDS", "0"),
        ("DEDUPE_WINDOW_SECONDS", "-1"),
        ("ROUTING_MAX_COUNTDOWN_SECONDS", "1.5"),
    ],
)
def test_out_of_range_or_malformed_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_countdown_must_be_at_most_half_the_visibility_timeout() -> None:
    # Exactly half is allowed: the message stays unacked for at most half the timeout.
    ok = Settings.from_env(
        {"ROUTING_MAX_COUNTDOWN_SECONDS": "60", "BROKER_VISIBILITY_TIMEOUT_SECONDS": "120"}
    )
    assert ok.routing_max_countdown_seconds == 60

    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ROUTING_MAX_COUNTDOWN_SECONDS": "61", "BROKER_VISIBILITY_TIMEOUT_SECONDS": "120"})
    message = str(caught.value)
    assert "ROUTING_MAX_COUNTDOWN_SECONDS=61" in message
    assert "BROKER_VISIBILITY_TIMEOUT_SECONDS=120" in message


def test_a_countdown_above_the_default_visibility_timeout_is_refused() -> None:
    with pytest.raises(SettingsError, match="ROUTING_MAX_COUNTDOWN_SECONDS=46"):
        Settings.from_env({"ROUTING_MAX_COUNTDOWN_SECONDS": "46"})


def test_require_webhook_auth_refuses_no_keys_unless_auth_is_disabled() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({}).require_webhook_auth()
    assert "WEBHOOK_API_KEYS" in str(caught.value)
    assert "WEBHOOK_AUTH_DISABLED=true" in str(caught.value)

    Settings.from_env({"WEBHOOK_API_KEYS": "k1"}).require_webhook_auth()
    Settings.from_env({"WEBHOOK_AUTH_DISABLED": "true"}).require_webhook_auth()


def test_require_cxone_credentials_names_each_missing_one() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({}).require_cxone_credentials()
    assert str(caught.value).startswith(
        "missing CXone credentials: CXONE_CLIENT_ID, CXONE_CLIENT_SECRET, CXONE_ACCESS_KEY_ID, "
        "CXONE_ACCESS_KEY_SECRET (CXONE_GRANT_TYPE=password, the default, needs the API user's access key"
    )

    client = {"CXONE_CLIENT_ID": "id", "CXONE_CLIENT_SECRET": "secret"}
    with pytest.raises(SettingsError, match="CXONE_ACCESS_KEY_SECRET"):
        Settings.from_env({**client, "CXONE_ACCESS_KEY_ID": "key"}).require_cxone_credentials()
    with pytest.raises(SettingsError, match="CXONE_ACCESS_KEY_ID"):
        Settings.from_env({**client, "CXONE_ACCESS_KEY_SECRET": "s="}).require_cxone_credentials()

    # The password grant with a full key pair, or client_credentials chosen explicitly.
    Settings.from_env(
        {**client, "CXONE_ACCESS_KEY_ID": "key", "CXONE_ACCESS_KEY_SECRET": "s="}
    ).require_cxone_credentials()
    Settings.from_env({**client, "CXONE_GRANT_TYPE": "client_credentials"}).require_cxone_credentials()


def test_client_credentials_alone_no_longer_switch_the_grant_silently() -> None:
    # Before CXONE_GRANT_TYPE, an empty access key quietly meant client_credentials: a typo in a
    # variable name changed the grant. Now the password grant says what it misses.
    settings = Settings.from_env({"CXONE_CLIENT_ID": "id", "CXONE_CLIENT_SECRET": "secret"})

    assert settings.cxone_grant_type == "password"
    with pytest.raises(SettingsError) as caught:
        settings.require_cxone_credentials()
    message = str(caught.value)
    assert "CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET" in message
    assert "CXONE_GRANT_TYPE=client_credentials" in message


@pytest.mark.parametrize(
    ("raw", "grant"),
    [
        ("password", "password"),
        ("client_credentials", "client_credentials"),
        (" Client_Credentials ", "client_credentials"),
    ],
)
def test_the_grant_type_is_a_setting(raw: str, grant: str) -> None:
    assert Settings.from_env({"CXONE_GRANT_TYPE": raw}).cxone_grant_type == grant


def test_an_unknown_grant_type_is_refused_by_name() -> None:
    with pytest.raises(
        SettingsError, match="CXONE_GRANT_TYPE='refresh_token' must be one of password, client_credentials"
    ):
        Settings.from_env({"CXONE_GRANT_TYPE": "refresh_token"})


def test_trusted_hosts_are_read_lower_cased_with_wildcards_and_plain_http_entries() -> None:
    settings = Settings.from_env(
        {"CXONE_TRUSTED_HOSTS": " NiceInContact.com , *.nicecxone.com,.example.org., http://CXone-Sandbox "}
    )

    assert settings.cxone_trusted_hosts == (
        "niceincontact.com",
        "nicecxone.com",
        "example.org",
        "http://cxone-sandbox",
    )


@pytest.mark.parametrize(
    "entry",
    [
        "https://niceincontact.com",
        "niceincontact.com/path",
        "nice*.com",
        "niceincontact.com:443",
        "a b.com",
        "-x.com",
    ],
)
def test_a_malformed_trusted_host_is_refused_by_name(entry: str) -> None:
    with pytest.raises(SettingsError, match="CXONE_TRUSTED_HOSTS="):
        Settings.from_env({"CXONE_TRUSTED_HOSTS": f"niceincontact.com,{entry}"})


@pytest.mark.parametrize(
    "environ",
    [
        {},  # https://cxone.niceincontact.com
        {
            "CXONE_AUTH_URL": "https://cxone.nice-incontact.com",
            "CXONE_API_URL": "https://api-c52.nice-incontact.com",
        },
        {"CXONE_API_URL": "https://api-de-na2.nicecxone-gov.com"},
        {"CXONE_AUTH_URL": "http://127.0.0.1:8088"},  # the sandbox on loopback, plain http
        {"CXONE_AUTH_URL": "http://localhost:8088", "CXONE_API_URL": "http://[::1]:9000"},
        {
            "CXONE_AUTH_URL": "http://cxone-sandbox:8088",
            "CXONE_TRUSTED_HOSTS": "niceincontact.com,http://cxone-sandbox",
        },
        {"CXONE_AUTH_URL": "https://auth.example.org", "CXONE_TRUSTED_HOSTS": "example.org"},
    ],
)
def test_cxone_urls_on_trusted_hosts_pass_the_worker_start_up_check(environ: dict[str, str]) -> None:
    Settings.from_env(environ).require_trusted_cxone_urls()


@pytest.mark.parametrize(
    ("environ", "named", "problem"),
    [
        ({"CXONE_AUTH_URL": "https://evilniceincontact.com"}, "CXONE_AUTH_URL", "not in CXONE_TRUSTED_HOSTS"),
        (
            {"CXONE_AUTH_URL": "https://niceincontact.com.evil.io"},
            "CXONE_AUTH_URL",
            "not in CXONE_TRUSTED_HOSTS",
        ),
        ({"CXONE_AUTH_URL": "http://cxone.niceincontact.com"}, "CXONE_AUTH_URL", "plain http"),
        ({"CXONE_API_URL": "https://api.example.com"}, "CXONE_API_URL", "host api.example.com"),
        ({"CXONE_API_URL": "http://10.0.0.5:8080"}, "CXONE_API_URL", "not in CXONE_TRUSTED_HOSTS"),
        ({"CXONE_AUTH_URL": "http://cxone-sandbox:8088"}, "CXONE_AUTH_URL", "not in CXONE_TRUSTED_HOSTS"),
        (
            {"CXONE_AUTH_URL": "https://niceincontact.com@evil.example"},
            "CXONE_AUTH_URL",
            "host evil.example",
        ),
    ],
)
def test_an_untrusted_cxone_url_stops_the_worker_naming_the_variable(
    environ: dict[str, str], named: str, problem: str
) -> None:
    settings = Settings.from_env(environ)  # the ingress, which never calls CXone, still starts

    with pytest.raises(SettingsError) as caught:
        settings.require_trusted_cxone_urls()

    message = str(caught.value)
    assert message.startswith(f"untrusted CXone URL: {named}={environ[named]}: "), message
    assert problem in message


def test_secrets_never_appear_in_repr() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "rediss://:redis-pass-0001@redis.internal:6380/0",
            "WEBHOOK_API_KEYS": "webhook-key-0001,webhook-key-0002",
            "CXONE_CLIENT_ID": "client-id-visible",
            "CXONE_CLIENT_SECRET": "client-secret-0001",
            "CXONE_ACCESS_KEY_ID": "access-key-id-0001",
            "CXONE_ACCESS_KEY_SECRET": "access-key-secret-0001=",
        }
    )

    text = repr(settings)
    for secret in (
        "redis-pass-0001",
        "webhook-key-0001",
        "webhook-key-0002",
        "client-secret-0001",
        "access-key-id-0001",
        "access-key-secret-0001",
    ):
        assert secret not in text
    assert "client-id-visible" in text  # not a secret, and useful when reading a log


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_every_setting_is_declared_once_with_its_own_variable() -> None:
    variables = environment_variables(Settings)

    assert len(variables) == len(fields(Settings))
    names = [v.name for v in variables] + [old for v in variables for old in v.old_names]
    assert len(names) == len(set(names)), "two settings read the same variable"
    assert all(name.isupper() and name.isidentifier() for name in names)
    # A secret (marked once, on its variable) is exactly what repr leaves out.
    assert {v.name for v in variables if v.secret} == {
        "REDIS_URL",
        "REDIS_SENTINEL_PASSWORD",
        "WEBHOOK_API_KEYS",
        "WEBHOOK_SIGNING_SECRETS",
        "CXONE_CLIENT_SECRET",
        "CXONE_ACCESS_KEY_ID",
        "CXONE_ACCESS_KEY_SECRET",
        "FLOWER_BASIC_AUTH",
    }
    assert [f.repr for f in fields(Settings)] == [not v.secret for v in variables]


@dataclass(frozen=True)
class _Renamed:
    """A setting whose variable was renamed from OLD_WORKERS (and before that, WORKERS)."""

    workers: int = setting("NEW_WORKERS", 4, integer, minimum=1, old_names=("OLD_WORKERS", "WORKERS"))


def test_a_renamed_variable_is_still_read_by_its_old_names() -> None:
    assert parse_environment(_Renamed, {}) == ({}, [])
    assert parse_environment(_Renamed, {"WORKERS": "2"}) == ({"workers": 2}, [])
    assert parse_environment(_Renamed, {"OLD_WORKERS": "3", "WORKERS": "2"}) == ({"workers": 3}, [])
    # The new name wins; a blank one counts as unset.
    assert parse_environment(_Renamed, {"NEW_WORKERS": "5", "OLD_WORKERS": "3"}) == ({"workers": 5}, [])
    assert parse_environment(_Renamed, {"NEW_WORKERS": " ", "OLD_WORKERS": "3"}) == ({"workers": 3}, [])


def test_a_problem_names_the_variable_the_operator_actually_set() -> None:
    assert parse_environment(_Renamed, {"OLD_WORKERS": "many"}) == (
        {},
        ["OLD_WORKERS='many' is not an integer"],
    )
    assert parse_environment(_Renamed, {"WORKERS": "0"}) == ({"workers": 0}, ["WORKERS=0 must be at least 1"])


def test_an_out_of_range_value_still_takes_part_in_the_relation_checks() -> None:
    # The operator set 9: the relation message must speak of 9, not of the default (60).
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"BROKER_VISIBILITY_TIMEOUT_SECONDS": "9"})

    assert str(caught.value) == (
        "invalid settings: BROKER_VISIBILITY_TIMEOUT_SECONDS=9 must be at least 10; "
        "ROUTING_MAX_COUNTDOWN_SECONDS=30 must be at most half of BROKER_VISIBILITY_TIMEOUT_SECONDS=9"
    )


def test_contact_ids_and_contact_fields_have_their_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert settings.contact_id_pattern == "^[0-9]{1,20}$"
    assert (
        settings.cxone_contact_queue_field,
        settings.cxone_contact_status_field,
        settings.cxone_contact_assignee_field,
    ) == ("routingQueueId", "status", "inboxAssigneeUser")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("[0-9", "is not a regular expression"),
        (".*", "accepts ''"),
        (".+", "accepts '.'"),
        (r"[0-9./]+", "accepts '.'"),
        (r"[^?]+", "accepts '.'"),
        (r"[0-9 ]+", "accepts '1 2'"),
    ],
)
def test_a_contact_id_pattern_that_would_let_an_id_escape_a_url_is_refused_at_start_up(
    pattern: str, problem: str
) -> None:
    with pytest.raises(SettingsError, match="CONTACT_ID_PATTERN=") as raised:
        Settings.from_env({"CONTACT_ID_PATTERN": pattern})

    assert problem in str(raised.value)


def test_a_stricter_or_other_contact_id_pattern_is_accepted() -> None:
    for pattern in (r"[0-9]{6,12}", r"\d+", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"):
        assert Settings.from_env({"CONTACT_ID_PATTERN": pattern}).contact_id_pattern == pattern


def test_contact_field_names_may_be_dotted_paths_but_not_empty_parts() -> None:
    assert Settings.from_env({"CXONE_CONTACT_QUEUE_FIELD": "routingQueue.id"}).cxone_contact_queue_field == (
        "routingQueue.id"
    )
    with pytest.raises(SettingsError, match="CXONE_CONTACT_ASSIGNEE_FIELD='inbox..id'"):
        Settings.from_env({"CXONE_CONTACT_ASSIGNEE_FIELD": "inbox..id"})

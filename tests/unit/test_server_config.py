"""trustsvc.server.config: one TOML file, then TRUSTSVC_<KEY> environment variables, then keyword overrides.

Every call passes ``env={...}`` so the environment of the test run never leaks in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trustsvc.errors import InvalidInput
from trustsvc.server import config as config_module
from trustsvc.server.config import ENV_PREFIX, Config, load_config


def _toml(tmp_path: Path, text: str, name: str = "trustsvc.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _bad_config(*args: object, **kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as exc_info:
        load_config(*args, **kwargs)  # type: ignore[arg-type]
    assert exc_info.value.reason == "BAD_CONFIG"
    return exc_info.value


# -- defaults -------------------------------------------------------------------------------------

def test_defaults_when_nothing_is_given() -> None:
    cfg = load_config(None, env={})
    assert cfg == Config()
    # the documented defaults (module docstring table and docs/daemon.md "Limits and operations")
    assert cfg.listen == "127.0.0.1:50051"
    assert cfg.metrics_listen == "127.0.0.1:9464"
    assert cfg.keystore == "soft"
    assert cfg.max_message_bytes == 67108864 == 64 * 1024 * 1024
    assert cfg.max_stream_bytes == 256 * 1024 * 1024
    assert cfg.max_concurrency == 64
    assert cfg.workers == 16
    assert cfg.processes == 1
    assert cfg.pin_cpus is False
    assert cfg.insecure is False
    assert cfg.default_deadline_s == 30.0
    assert cfg.audit_checkpoint_every == 100
    assert (cfg.audit_key, cfg.token_key, cfg.tsa_key) == ("audit", "token", "tsa")
    assert cfg.grace_s == 10.0
    assert (cfg.idempotency_retention_s, cfg.housekeeping_interval_s) == (86_400, 600)


def test_docstring_table_matches_the_dataclass_defaults() -> None:
    doc = config_module.__doc__ or ""
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    for name, shown in [("listen", '"127.0.0.1:50051"'), ("metrics_listen", '"127.0.0.1:9464"'),
                        ("max_message_bytes", "67108864"), ("max_concurrency", "64"), ("workers", "16"),
                        ("processes", "1"), ("pin_cpus", "false"), ("default_deadline_s", "30"),
                        ("audit_checkpoint_every", "100"), ("audit_key", '"audit"'), ("token_key", '"token"'),
                        ("tsa_key", '"tsa"'), ("grace_s", "10"), ("idempotency_retention_s", "86400"),
                        ("housekeeping_interval_s", "600")]:
        assert f"{name} = {shown}" in doc, name
        value = defaults[name]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert shown.strip('"') == text.removesuffix(".0"), name


def test_database_and_policy_follow_home() -> None:
    cfg = load_config(None, env={}, home="/srv/ts")
    assert cfg.home == Path("/srv/ts")
    assert cfg.database == "sqlite:////srv/ts/trustsvc.db"
    assert cfg.policy == "/srv/ts/policy.toml"
    # given explicitly, they stay as given
    cfg = load_config(None, env={}, home="/srv/ts", database="postgresql://db/ts", policy="/etc/p.toml")
    assert (cfg.database, cfg.policy) == ("postgresql://db/ts", "/etc/p.toml")


def test_redacted_hides_the_database_password() -> None:
    cfg = load_config(None, env={}, database="postgresql://user:secret@db:5432/ts")
    red = cfg.redacted()
    assert red["database"] == "postgresql://***@db:5432/ts"
    assert "secret" not in repr(red)
    assert red["home"] == str(cfg.home)


# -- the TOML file --------------------------------------------------------------------------------

def test_server_table(tmp_path: Path) -> None:
    path = _toml(tmp_path, """
[server]
listen = "0.0.0.0:7000"
workers = 4
insecure = true
default_deadline_s = 2.5
grace_s = 3
home = "/var/lib/ts"
""")
    cfg = load_config(path, env={})
    assert cfg.listen == "0.0.0.0:7000"
    assert cfg.workers == 4 and isinstance(cfg.workers, int)
    assert cfg.insecure is True
    assert cfg.default_deadline_s == 2.5
    assert cfg.grace_s == 3.0 and isinstance(cfg.grace_s, float)
    assert cfg.home == Path("/var/lib/ts") and isinstance(cfg.home, Path)
    assert cfg.database == "sqlite:////var/lib/ts/trustsvc.db"
    assert cfg.max_concurrency == 64  # untouched keys keep their defaults


def test_top_level_keys(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'listen = "0.0.0.0:7001"\nprocesses = 3\npin_cpus = true\n')
    cfg = load_config(str(path), env={})
    assert (cfg.listen, cfg.processes, cfg.pin_cpus) == ("0.0.0.0:7001", 3, True)


def test_deployed_example_config_loads(tmp_path: Path) -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "trustsvc.toml"
    cfg = load_config(deploy, env={})
    assert cfg.home == Path("/var/lib/trustsvc")
    assert cfg.listen == "0.0.0.0:50051"
    assert cfg.max_stream_bytes == 268435456
    assert cfg.pin_cpus is False


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    err = _bad_config(_toml(tmp_path, '[server]\nlisten = "x:1"\nworkerz = 3\nzz = 1\n'), env={})
    assert "workerz" in err.message and "zz" in err.message
    err = _bad_config(_toml(tmp_path, "max_msg_bytes = 1\n", "top.toml"), env={})
    assert "max_msg_bytes" in err.message


def test_top_level_keys_beside_a_server_table_are_not_silently_dropped(tmp_path: Path) -> None:
    # written above [server], "listen" would otherwise be ignored without a word
    path = _toml(tmp_path, 'listen = "0.0.0.0:7002"\n[server]\nworkers = 2\n')
    err = _bad_config(path, env={})
    assert "listen" in err.message


def test_server_that_is_not_a_table(tmp_path: Path) -> None:
    err = _bad_config(_toml(tmp_path, 'server = "0.0.0.0:1"\n'), env={})
    assert "[server]" in err.message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    err = _bad_config(missing, env={})
    assert "cannot read config" in err.message and str(missing) in err.message


def test_unreadable_file(tmp_path: Path) -> None:
    err = _bad_config(tmp_path, env={})  # a directory cannot be read as a file
    assert "cannot read config" in err.message and str(tmp_path) in err.message


def test_invalid_toml(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[server]\nlisten = "unterminated\n')
    err = _bad_config(path, env={})
    assert "cannot read config" in err.message and str(path) in err.message
    assert "line 2" in err.message  # tomllib's position survives in the message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nlog_level = "\xe9"\n')
    err = _bad_config(path, env={})
    assert "cannot read config" in err.message


def test_empty_path_means_no_file() -> None:
    assert load_config("", env={}) == Config()


# -- precedence -----------------------------------------------------------------------------------

def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[server]\nlisten = "file:1"\nworkers = 4\nlog_level = "DEBUG"\n')
    cfg = load_config(path, env={"TRUSTSVC_LISTEN": "env:2", "TRUSTSVC_WORKERS": "8"})
    assert cfg.listen == "env:2"
    assert cfg.workers == 8
    assert cfg.log_level == "DEBUG"  # not in the environment: the file's value


def test_keyword_overrides_beat_environment_and_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[server]\nlisten = "file:1"\nworkers = 4\ngrace_s = 7\n')
    env = {"TRUSTSVC_LISTEN": "env:2", "TRUSTSVC_WORKERS": "8", "TRUSTSVC_GRACE_S": "9"}
    cfg = load_config(path, env=env, listen="kw:3", workers=12)
    assert cfg.listen == "kw:3"
    assert cfg.workers == 12
    assert cfg.grace_s == 9.0  # no keyword: the environment's value


def test_none_overrides_are_ignored(tmp_path: Path) -> None:
    # cli/serve.py passes every flag, None when the flag was not given
    path = _toml(tmp_path, '[server]\nlisten = "file:1"\n')
    cfg = load_config(path, env={"TRUSTSVC_METRICS_LISTEN": ""}, listen=None, metrics_listen=None)
    assert cfg.listen == "file:1"
    assert cfg.metrics_listen == ""  # an empty string is a value ("" disables metrics)


def test_environment_names_and_unrelated_variables() -> None:
    env = {"TRUSTSVC_MAX_MESSAGE_BYTES": "1024", "TRUSTSVC_HSM_DIR": "/opt/hsm", "trustsvc_workers": "3",
           "TRUSTSVC_KEYSTORE_PASSPHRASE": "not a config key", "HOME": "/root"}
    cfg = load_config(None, env=env)
    assert cfg.max_message_bytes == 1024
    assert cfg.workers == 16  # names are upper-case only
    assert ENV_PREFIX == "TRUSTSVC_"


def test_environment_home_moves_database_and_policy() -> None:
    cfg = load_config(None, env={"TRUSTSVC_HOME": "/data/ts"})
    assert cfg.home == Path("/data/ts")
    assert cfg.database == "sqlite:////data/ts/trustsvc.db"
    assert cfg.policy == "/data/ts/policy.toml"


def test_real_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTSVC_WORKERS", "5")
    assert load_config(None).workers == 5
    assert load_config(None, env={}).workers == 16


def test_unknown_keyword_override() -> None:
    err = _bad_config(None, env={}, workerz=3)
    assert "workerz" in err.message


# -- type coercion --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("true", True), ("TRUE", True), ("True", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("off", False),
])
def test_bool_from_environment(text: str, expected: bool) -> None:
    cfg = load_config(None, env={"TRUSTSVC_INSECURE": text, "TRUSTSVC_PIN_CPUS": text})
    assert cfg.insecure is expected and cfg.pin_cpus is expected


@pytest.mark.parametrize("text", ["ture", "maybe", "2", "", "enabled"])
def test_bool_that_is_not_a_bool(text: str) -> None:
    # a typo must not silently become False
    err = _bad_config(None, env={"TRUSTSVC_PIN_CPUS": text})
    assert "pin_cpus" in err.message and repr(text) in err.message


def test_bool_from_toml_and_keywords(tmp_path: Path) -> None:
    assert load_config(_toml(tmp_path, "insecure = true\n"), env={}).insecure is True
    assert load_config(_toml(tmp_path, "insecure = false\n", "f.toml"), env={}).insecure is False
    assert load_config(None, env={}, pin_cpus=True).pin_cpus is True
    assert load_config(None, env={}, pin_cpus="on").pin_cpus is True
    # benchmarks/daemon.py sets TRUSTSVC_PIN_CPUS=str(bool)
    assert load_config(None, env={"TRUSTSVC_PIN_CPUS": str(True)}).pin_cpus is True
    assert load_config(None, env={"TRUSTSVC_PIN_CPUS": str(False)}).pin_cpus is False


def test_int_fields() -> None:
    cfg = load_config(None, env={"TRUSTSVC_WORKERS": "32", "TRUSTSVC_PROCESSES": " 4 ",
                                 "TRUSTSVC_MAX_CONCURRENCY": "128", "TRUSTSVC_TOKEN_TTL_S": "60"})
    assert (cfg.workers, cfg.processes, cfg.max_concurrency, cfg.token_ttl_s) == (32, 4, 128, 60)
    assert all(isinstance(v, int) for v in (cfg.workers, cfg.processes, cfg.max_concurrency, cfg.token_ttl_s))
    assert load_config(None, env={}, workers="7").workers == 7


@pytest.mark.parametrize("text", ["sixteen", "1.5", "", "0x10", "16k"])
def test_invalid_int_from_environment(text: str) -> None:
    err = _bad_config(None, env={"TRUSTSVC_WORKERS": text})
    assert "workers" in err.message and repr(text) in err.message and "int" in err.message


@pytest.mark.parametrize("toml_value", ["true", "3.7", '"many"', "[1, 2]", "{ n = 1 }"])
def test_invalid_int_from_toml(tmp_path: Path, toml_value: str) -> None:
    err = _bad_config(_toml(tmp_path, f"[server]\nworkers = {toml_value}\n"), env={})
    assert "workers" in err.message


def test_integral_float_is_an_int(tmp_path: Path) -> None:
    assert load_config(_toml(tmp_path, "workers = 8.0\n"), env={}).workers == 8


def test_float_fields(tmp_path: Path) -> None:
    cfg = load_config(None, env={"TRUSTSVC_DEFAULT_DEADLINE_S": "0.25", "TRUSTSVC_GRACE_S": "5"})
    assert cfg.default_deadline_s == 0.25
    assert cfg.grace_s == 5.0 and isinstance(cfg.grace_s, float)
    cfg = load_config(_toml(tmp_path, "default_deadline_s = 12\n"), env={})
    assert cfg.default_deadline_s == 12.0 and isinstance(cfg.default_deadline_s, float)


@pytest.mark.parametrize("text", ["soon", "", "1,5"])
def test_invalid_float(text: str) -> None:
    err = _bad_config(None, env={"TRUSTSVC_GRACE_S": text})
    assert "grace_s" in err.message and repr(text) in err.message and "float" in err.message


@pytest.mark.parametrize("toml_value", ["true", "[1]", "{ s = 1 }"])
def test_invalid_float_from_toml(tmp_path: Path, toml_value: str) -> None:
    err = _bad_config(_toml(tmp_path, f"grace_s = {toml_value}\n"), env={})
    assert "grace_s" in err.message


def test_str_fields(tmp_path: Path) -> None:
    cfg = load_config(None, env={"TRUSTSVC_LOG_LEVEL": "DEBUG", "TRUSTSVC_KEYSTORE": "hsm",
                                 "TRUSTSVC_TOKEN_ISSUER": "https://id.example"})
    assert (cfg.log_level, cfg.keystore, cfg.token_issuer) == ("DEBUG", "hsm", "https://id.example")
    # a TOML number where a string is expected becomes its text
    assert load_config(_toml(tmp_path, "audit_key = 7\n"), env={}).audit_key == "7"


@pytest.mark.parametrize("field, toml_value", [("listen", "{ host = 'x' }"), ("audit_key", '["a", "b"]'),
                                               ("home", "[1]"), ("home", "5")])
def test_tables_and_arrays_are_not_strings(tmp_path: Path, field: str, toml_value: str) -> None:
    err = _bad_config(_toml(tmp_path, f"[server]\n{field} = {toml_value}\n"), env={})
    assert field in err.message


def test_home_is_a_path(tmp_path: Path) -> None:
    cfg = load_config(None, env={"TRUSTSVC_HOME": str(tmp_path)})
    assert cfg.home == tmp_path and isinstance(cfg.home, Path)
    cfg = load_config(None, env={}, home=tmp_path / "h")
    assert cfg.home == tmp_path / "h"


# -- default_key_spec -----------------------------------------------------------------------------

def test_default_key_spec(tmp_path: Path) -> None:
    assert load_config(None, env={}).default_key_spec == "sm2"  # nothing changes unless asked
    assert load_config(_toml(tmp_path, '[server]\ndefault_key_spec = "ec-p256"\n'), env={}).default_key_spec \
        == "ec-p256"
    assert load_config(None, env={"TRUSTSVC_DEFAULT_KEY_SPEC": "RSA-2048 "}).default_key_spec == "rsa-2048"
    assert load_config(None, env={}, default_key_spec="rsa-3072").default_key_spec == "rsa-3072"
    assert 'default_key_spec = "sm2"' in (config_module.__doc__ or "")


@pytest.mark.parametrize("value", ["p256", "ecdsa", "", "ec-p384", "ed25519", "rsa-1024"])
def test_bad_default_key_spec_is_bad_config(tmp_path: Path, value: str) -> None:
    err = _bad_config(None, env={"TRUSTSVC_DEFAULT_KEY_SPEC": value})
    assert "default_key_spec" in err.message and "ec-p256" in err.message
    _bad_config(_toml(tmp_path, f'[server]\ndefault_key_spec = "{value}"\n'), env={})
    _bad_config(_toml(tmp_path, "[server]\ndefault_key_spec = 256\n", "num.toml"), env={})


# -- retention and housekeeping -------------------------------------------------------------------

def test_retention_and_housekeeping(tmp_path: Path) -> None:
    cfg = load_config(_toml(tmp_path, "[server]\nidempotency_retention_s = 3600\nhousekeeping_interval_s = 0\n"),
                      env={})
    assert (cfg.idempotency_retention_s, cfg.housekeeping_interval_s) == (3600, 0)  # 0: no housekeeping


@pytest.mark.parametrize("env", [{"TRUSTSVC_IDEMPOTENCY_RETENTION_S": "299"},  # shorter than a request may run
                                 {"TRUSTSVC_IDEMPOTENCY_RETENTION_S": "nan"},
                                 {"TRUSTSVC_HOUSEKEEPING_INTERVAL_S": "-1"},
                                 {"TRUSTSVC_HOUSEKEEPING_INTERVAL_S": "nan"}])
def test_bad_retention_or_housekeeping_interval(env: dict[str, str]) -> None:
    err = _bad_config(None, env=env)
    assert next(iter(env)).removeprefix(ENV_PREFIX).lower() in err.message

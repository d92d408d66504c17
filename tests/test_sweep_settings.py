"""Storage settings: environment, derived Ray/pyarrow/boto3/MLflow settings, secrets never shown."""

import logging
import pickle

import pytest

from radae.store.settings import MASK, SettingsError, StorageSettings, scrub

ENV = {
    "RADAE_S3_ENDPOINT": "http://127.0.0.1:9999",
    "RADAE_S3_BUCKET": "sweeps",
    "RADAE_S3_PREFIX": "/team/radae/",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY123",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
}


def test_from_env_and_precedence():
    s = StorageSettings.from_env(ENV)
    assert (s.endpoint, s.bucket, s.prefix, s.region) == ("http://127.0.0.1:9999", "sweeps", "team/radae", "us-east-1")
    assert s.access_key == ENV["AWS_ACCESS_KEY_ID"]
    # RADAE_S3_* wins over AWS_*, explicit arguments win over both.
    s2 = StorageSettings.from_env({**ENV, "RADAE_S3_ACCESS_KEY_ID": "radaekey0001"}, bucket="other")
    assert s2.access_key == "radaekey0001" and s2.bucket == "other"
    with pytest.raises(SettingsError, match="RADAE_S3_BUCKET"):
        StorageSettings.from_env({"RADAE_S3_ENDPOINT": "http://127.0.0.1:9"})
    with pytest.raises(SettingsError, match="endpoint"):
        StorageSettings.from_env({**ENV, "RADAE_S3_ENDPOINT": "127.0.0.1:9000"})
    with pytest.raises(SettingsError, match="bucket"):
        StorageSettings(bucket="a/b")


def test_repr_and_str_hide_credentials(caplog):
    s = StorageSettings.from_env(ENV)
    for text in (repr(s), str(s), str(s.public())):
        assert ENV["AWS_SECRET_ACCESS_KEY"] not in text and ENV["AWS_ACCESS_KEY_ID"] not in text
    with caplog.at_level(logging.INFO):
        logging.getLogger("radae.test").info("storage %s %r %s", s, s, s.public())
    assert ENV["AWS_SECRET_ACCESS_KEY"] not in caplog.text
    assert "sweeps" in repr(s) and "127.0.0.1:9999" in repr(s)


def test_derived_client_settings_agree():
    s = StorageSettings.from_env(ENV)
    kw = s.boto3_kwargs()
    assert kw["endpoint_url"] == "http://127.0.0.1:9999" and kw["aws_secret_access_key"] == ENV["AWS_SECRET_ACCESS_KEY"]
    options = s.pyarrow_kwargs()
    assert (options["endpoint_override"], options["scheme"], options["region"]) == (
        "127.0.0.1:9999",
        "http",
        "us-east-1",
    )
    assert s.pyarrow_fs().region == "us-east-1"
    path, ray_fs = s.ray_storage("tune")
    assert path == "sweeps/team/radae/ray/tune" and "://" not in path  # pyarrow fs + path without scheme
    assert s.uri("results", "sweep=a") == "s3://sweeps/team/radae/results/sweep=a"
    assert s.mlflow_client_env() == {"MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9999"}
    assert s.server_env()["AWS_SECRET_ACCESS_KEY"] == ENV["AWS_SECRET_ACCESS_KEY"]
    assert "AWS_SECRET_ACCESS_KEY" not in s.mlflow_client_env()


def test_ray_filesystem_pickle_holds_no_secret_and_reads_the_environment_where_unpickled(monkeypatch):
    # Credentials only in RADAE_S3_*: the pickle Ray stores in the bucket must not carry them.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "RADAE_S3_ACCESS_KEY_ID", "RADAE_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    env = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}
    env.update(RADAE_S3_ACCESS_KEY_ID=ENV["AWS_ACCESS_KEY_ID"], RADAE_S3_SECRET_ACCESS_KEY=ENV["AWS_SECRET_ACCESS_KEY"])
    s = StorageSettings.from_env(env)
    assert s.secret_key == ENV["AWS_SECRET_ACCESS_KEY"]
    for fs in (s.ray_storage()[1], s.pyarrow_fs()):
        blob = pickle.dumps(fs)
        assert ENV["AWS_SECRET_ACCESS_KEY"].encode() not in blob and ENV["AWS_ACCESS_KEY_ID"].encode() not in blob
        # Unpickled in a worker whose environment has the credentials, it reads them there.
        monkeypatch.setenv("RADAE_S3_ACCESS_KEY_ID", "workerkey01")
        monkeypatch.setenv("RADAE_S3_SECRET_ACCESS_KEY", "workersecret01")
        again = pickle.loads(blob)
        assert isinstance(again, type(fs)) and again.region == "us-east-1"
        assert again.__reduce__()[1][1] == s.public()  # (settings class, public settings, max attempts)
    assert s.radae_env()["RADAE_S3_SECRET_ACCESS_KEY"] == ENV["AWS_SECRET_ACCESS_KEY"]
    assert StorageSettings.from_env(s.radae_env()) == s


def test_scrub_removes_secrets_everywhere(monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    s = StorageSettings.from_env(ENV)
    secret = ENV["AWS_SECRET_ACCESS_KEY"]
    record = {
        "data.data_dir": f"/data?key={secret}",
        "nested": {"aws_secret_access_key": "anything", "list": [secret, ("x", secret)], "n": 3},
        "session_token": "tok-123456",
        "note": "fine",
        "empty_token": None,
    }
    clean = scrub(record, s.secrets())
    assert secret not in repr(clean)
    assert clean["data.data_dir"] == f"/data?key={MASK}"
    assert clean["nested"]["aws_secret_access_key"] == MASK and clean["session_token"] == MASK
    assert clean["nested"]["list"] == [MASK, ("x", MASK)] and clean["nested"]["n"] == 3
    assert clean["note"] == "fine" and clean["empty_token"] is None
    # Secrets of the environment are scrubbed even when not passed explicitly.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-only-secret-value")
    assert scrub("x env-only-secret-value y") == f"x {MASK} y"

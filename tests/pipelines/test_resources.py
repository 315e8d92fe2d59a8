"""Issue 9, problem 2 (unit level): Ray's runtime environment, which Ray logs in plaintext,
never carries a secret; the end-to-end grep of a real build's logs is in
tests/flows/test_build_leaves_nothing.py."""
from pipelines.resources import SECRET_ENV, forwarded_env, runtime_env

PLANTED = {"AWS_ACCESS_KEY_ID": "AKIAPLANTED", "AWS_SECRET_ACCESS_KEY": "planted-secret",
           "AWS_SESSION_TOKEN": "planted-token", "PREFECT_API_KEY": "pnu_planted", "OPENAI_API_KEY": "sk-planted"}


def test_runtime_env_forwards_settings_but_no_secret(monkeypatch):
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert set(PLANTED) <= set(SECRET_ENV)
    for on_cluster in (False, True):
        env = runtime_env(on_cluster)["env_vars"]
        assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8333" and env["PREFECT_API_URL"].endswith("/api")
        assert not set(PLANTED.values()) & set(env.values()), env
        assert not set(PLANTED) & set(env)
    assert not set(PLANTED) & set(forwarded_env())

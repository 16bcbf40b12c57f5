"""Kafka security by configuration: the options every client gets, TLS handshakes made with
them against a real TLS server, one-line errors for mistakes, and secrets kept out of logs.

The embedded broker (Tansu 0.6) cannot serve TLS, and with authentication on it accepts no
users, so the TLS tests run against a Python TLS server on loopback and the SASL test checks
that the worker really runs the SCRAM exchange, and that its password stays out of its log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import SaslAuthenticateRequest_v1
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from streams.app import create_app
from streams.broker import EmbeddedBroker
from streams.cli import main
from streams.kafka import ensure_topics
from streams.logs import redact_secrets
from streams.metrics import Metrics
from streams.settings import Settings

PASSWORD = "pw-Zq81-never-logged"
SASL = {
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "monitor",
    "kafka_sasl_password": PASSWORD,
}


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def signed(folder: Path, ca: str, name: str, cn: str, san: str | None = None) -> None:
    """A key and a certificate for `cn`, signed by the CA `ca`."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{folder}/{name}.key", "-out", f"{folder}/{name}.csr")  # fmt: skip
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{folder}/{name}.csr", "-days", "2",
            "-CA", f"{folder}/{ca}.pem", "-CAkey", f"{folder}/{ca}.key", "-CAcreateserial",
            "-extfile", str(extensions), "-out", f"{folder}/{name}.pem")  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two throwaway CAs; a server certificate for 127.0.0.1 and a client one, from the first."""
    folder = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN={ca}", "-keyout", f"{folder}/{ca}.key", "-out", f"{folder}/{ca}.pem")  # fmt: skip
    signed(folder, "ca", "server", "localhost", "DNS:localhost,IP:127.0.0.1")
    signed(folder, "ca", "client", "abuse-monitor")
    return folder


def tls(pki: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "broker": "kafka://127.0.0.1:1",
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": str(pki / "ca.pem"),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


# -- the options each protocol gives -----------------------------------------------------------
def test_plaintext_adds_nothing() -> None:
    settings = Settings()
    assert settings.kafka_client_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.faust_credentials() is None


def test_ssl_verifies_the_broker_with_the_configured_ca(pki: Path) -> None:
    settings = tls(pki)
    options = settings.kafka_client_options()
    assert set(options) == {"security_protocol", "ssl_context"}
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [dict(c["subject"][0])["commonName"] for c in context.get_ca_certs()] == ["ca"]
    credentials = settings.faust_credentials()
    assert isinstance(credentials, SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"
    assert not tls(pki, kafka_ssl_check_hostname=False).kafka_ssl_context().check_hostname  # type: ignore[union-attr]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_gives_aiokafka_and_faust_the_same_options(
    pki: Path, protocol: str, mechanism: str
) -> None:
    settings = Settings(
        kafka_security_protocol=protocol,  # type: ignore[arg-type]
        **{**SASL, "kafka_sasl_mechanism": mechanism},  # type: ignore[arg-type]
        **({"kafka_ssl_cafile": str(pki / "ca.pem")} if protocol == "SASL_SSL" else {}),  # type: ignore[arg-type]
    )
    ours = settings.kafka_client_options()
    credentials = settings.faust_credentials()
    assert isinstance(credentials, SASLCredentials)
    # What Faust's aiokafka driver hands its consumer, producer and topic creation.
    faust_options = credentials_to_aiokafka_auth(credentials)
    assert faust_options.pop("ssl_context") is not None if protocol == "SASL_SSL" else True
    assert (ours.pop("ssl_context", None) is not None) == (protocol == "SASL_SSL")
    assert (
        ours
        == {k: v for k, v in faust_options.items() if v is not None}
        == {
            "security_protocol": protocol,
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "monitor",
            "sasl_plain_password": PASSWORD,
        }
    )


def test_the_faust_app_gets_the_credentials() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", **SASL)  # type: ignore[arg-type]
    app = create_app(settings, Metrics(CollectorRegistry())).app
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512" and auth["sasl_plain_password"] == PASSWORD


# -- a real TLS handshake with the options ------------------------------------------------------
class TLSServer:
    """Accepts TCP connections on loopback, makes the TLS handshake (asking for a client
    certificate), records how it went, and closes: enough to see what a client did."""

    def __init__(self, pki: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki / "ca.pem")
        self.context.load_cert_chain(pki / "server.pem", pki / "server.key")
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.stopping = threading.Event()
        self.port = self.listener.getsockname()[1]
        self.handshakes: list[str] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            with sock:
                sock.settimeout(5)
                try:
                    with self.context.wrap_socket(sock, server_side=True) as conn:
                        peer = conn.getpeercert()
                        client = dict(peer["subject"][0])["commonName"] if peer else "-"
                        self.handshakes.append(f"ok client={client}")
                except (ssl.SSLError, OSError) as exc:
                    self.handshakes.append(f"failed {exc}")

    def __enter__(self) -> TLSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


def attempt(pki: Path, **overrides: object) -> list[str]:
    """Run the admin client (topic set-up) against the TLS server; return its handshakes."""
    with TLSServer(pki) as server:
        settings = tls(pki, broker=f"kafka://127.0.0.1:{server.port}", **overrides)
        with pytest.raises(KafkaError):  # it speaks no Kafka after the handshake
            asyncio.run(asyncio.wait_for(ensure_topics(settings, {"t": 1}), 20))
        deadline = time.monotonic() + 5
        while not server.handshakes and time.monotonic() < deadline:
            time.sleep(0.01)
        return server.handshakes


def test_tls_handshake_with_the_configured_ca_and_client_certificate(pki: Path) -> None:
    handshakes = attempt(
        pki,
        kafka_ssl_certfile=str(pki / "client.pem"),
        kafka_ssl_keyfile=str(pki / "client.key"),
    )
    assert handshakes and set(handshakes) == {"ok client=abuse-monitor"}


def test_tls_handshake_without_a_client_certificate(pki: Path) -> None:
    assert set(attempt(pki)) == {"ok client=-"}


@pytest.mark.parametrize("cafile", ["other-ca.pem", ""])
def test_a_broker_certificate_from_another_ca_is_refused(
    pki: Path, cafile: str, caplog: pytest.LogCaptureFixture
) -> None:
    # "": the system's CAs, which do not include the throwaway one.
    handshakes = attempt(pki, kafka_ssl_cafile=str(pki / cafile) if cafile else "")
    assert handshakes and all(h.startswith("failed") for h in handshakes)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text  # the client refused the server's chain


# -- mistakes: one line, exit status 2 ----------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "ABUSEMON_KAFKA_SASL_MECHANISM: Value error, required with "
            "ABUSEMON_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "monitor",
            },
            "ABUSEMON_KAFKA_SASL_PASSWORD: Value error, required with",
        ),
        ({"KAFKA_SASL_PASSWORD": PASSWORD}, "ABUSEMON_KAFKA_SASL_PASSWORD: Value error, set, but"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "ABUSEMON_KAFKA_SECURITY_PROTOCOL: Input should be"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "ABUSEMON_KAFKA_SSL_CAFILE: Value error, no such file: /nonexistent/ca.pem",
        ),
        (
            {"KAFKA_SSL_CAFILE": "{pki}/ca.pem"},
            "ABUSEMON_KAFKA_SSL_CAFILE: Value error, set, but "
            "ABUSEMON_KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no TLS",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "{pki}/client.key"},
            "ABUSEMON_KAFKA_SSL_KEYFILE: Value error, set, but ABUSEMON_KAFKA_SSL_CERTFILE is not",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "{pki}/client.ext"},
            "ABUSEMON_KAFKA_SSL_*: cannot load the TLS certificates or key:",
        ),
    ],
)
def test_a_security_mistake_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pki: Path,
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"ABUSEMON_{name}", value.format(pki=pki))
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"abuse-monitor: error: {expected}"), err
    assert err.count("\n") == 1 and PASSWORD not in err


# -- secrets stay secret ------------------------------------------------------------------------
def test_settings_never_show_a_secret() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        console_token="tok-Vb29-never-shown",
        **SASL,  # type: ignore[arg-type]
    )
    shown = [repr(settings), str(settings), Settings.table(), settings.model_dump_json()]
    for text in shown:
        assert PASSWORD not in text and "tok-Vb29-never-shown" not in text
    # Only a child's environment carries them, for the worker the demo starts.
    environment = settings.environment()
    assert environment["ABUSEMON_KAFKA_SASL_PASSWORD"] == PASSWORD
    assert environment["ABUSEMON_CONSOLE_TOKEN"] == "tok-Vb29-never-shown"
    assert Settings(**{k.removeprefix("ABUSEMON_").lower(): v for k, v in environment.items()}) == settings  # type: ignore[arg-type]  # fmt: skip


def test_a_sasl_plain_request_logged_by_aiokafka_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redact_secrets([Settings(kafka_security_protocol="SASL_PLAINTEXT", **SASL).kafka_sasl_password])  # type: ignore[arg-type]  # fmt: skip
    request = SaslAuthenticateRequest_v1(f"\0monitor\0{PASSWORD}".encode())
    with caplog.at_level(logging.DEBUG, logger="aiokafka.conn"):
        logging.getLogger("aiokafka.conn").debug("Request to %s:%d %d: %s", "h", 1, 2, request)
        try:
            raise RuntimeError(f"failed with {PASSWORD}")
        except RuntimeError:
            logging.getLogger("aiokafka.conn").exception("oops")
    text = caplog.text
    assert "SaslAuthenticateRequest" in text and "sasl_auth_bytes=**********" in text
    assert PASSWORD[:6] not in text and "failed with **********" in text


def test_the_worker_log_never_shows_the_sasl_password(tmp_path: Path) -> None:
    """A worker at debug level, whose SCRAM authentication fails: the log shows the exchange
    (the password was used) and never the password."""
    from tests.conftest import worker_settings

    log_path = tmp_path / "worker.log"
    with EmbeddedBroker(authentication=True) as broker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
        env |= worker_settings(
            broker, kafka_security_protocol="SASL_PLAINTEXT", log_level="debug", **SASL
        )
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            worker.wait(timeout=60)  # it stops: the broker knows no such user
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    text = log_path.read_text(errors="replace")
    assert "SaslHandShakeRequest_v1(mechanism='SCRAM-SHA-512')" in text, text[-3000:]
    assert "e=unknown-user" in text  # the broker's verdict on the client's proof
    assert PASSWORD not in text and PASSWORD.encode().hex() not in text


def test_redaction_blanks_whole_secrets_only_and_never_short_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redact_secrets([SecretStr("a"), SecretStr("Tok3n-of-the-console"), SecretStr("pw_12345")])
    lines = [
        "a worker started, all partitions assigned",  # "a": too short to blank anything
        "Bearer Tok3n-of-the-console sent",
        "token=Tok3n-of-the-console&next=1",
        "xTok3n-of-the-consoleY is another word",
        "b'\\x00user\\x00pw_12345' and pw_123456 and pw_12345",
    ]
    with caplog.at_level(logging.INFO, logger="abuse_monitor.test"):
        for line in lines:
            logging.getLogger("abuse_monitor.test").info("%s", line)
    assert caplog.messages == [
        "a worker started, all partitions assigned",
        "Bearer ********** sent",
        "token=**********&next=1",
        "xTok3n-of-the-consoleY is another word",
        "b'\\x00user\\x00**********' and pw_123456 and **********",
    ]


def test_metrics_name_labellers_by_a_keyed_pseudonym_only() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from detectors.events import Label
    from streams.app import create_app
    from streams.metrics import Metrics, labeler_pseudonym

    def labelled_by(key: str, labeler: str) -> str:
        settings = Settings(
            broker="kafka://127.0.0.1:1",
            labeler_pseudonym_key=key,  # type: ignore[arg-type]
        )
        worker = create_app(settings, Metrics(CollectorRegistry()))
        label = Label(
            label_id=f"l-{labeler}",
            ts="2026-11-24T10:00:00Z",  # type: ignore[arg-type]
            subject_type="actor",
            subject_id="u1",
            verdict="abusive",
            labeler=labeler,
        )
        worker.apply_label(label)
        return generate_latest(worker.metrics.registry).decode()

    text = labelled_by("key-one-of-the-deployment", "ana.lysis")
    assert "ana.lysis" not in text
    pseudonym = labeler_pseudonym(b"key-one-of-the-deployment", "ana.lysis")
    assert f'abusemon_labeler_labels_total{{labeler="{pseudonym}"}} 1.0' in text
    # Stable under one key (across restarts), another under another key.
    assert pseudonym in labelled_by("key-one-of-the-deployment", "ana.lysis")
    assert pseudonym not in labelled_by("key-two-of-the-deployment", "ana.lysis")

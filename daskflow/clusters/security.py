"""TLS for the clusters daskflow starts: one set of temporary credentials per driver process.

Dask's plain ``tcp://`` sends everything unauthenticated and unencrypted: anyone who
can reach a scheduler can run code on its workers as the run's user. So every cluster
daskflow starts gets a :class:`distributed.security.Security` with
``require_encryption=True`` and a self-signed certificate made in memory for this
driver process (a CLI run), in the shape of ``Security.temporary()``; a client without
it is refused. ``Security.temporary()`` makes an RSA-2048 key (seconds of CPU on a
loaded machine); an EC P-256 key costs milliseconds, and :func:`start` begins making it
in the background as soon as a run starts.

``daskflow.cluster.tls: false`` turns it off (Dask's plain tcp, for a setup with its own
security). A failure to make the credentials in the background is not reported from that
thread: the first cluster that needs them makes them again, and that failure is the run's
one-line :class:`~daskflow.clusters.errors.TLSCredentialsError`. A run on
``--scheduler-address`` uses Dask's own ``distributed.comm`` settings: an existing
cluster's security is its own.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import threading
from typing import Any

from .. import config
from ..scratch import owned_prefix
from .errors import TLSCredentialsError

#: the certificate's name, as Security.temporary() has it (Dask does not check host names)
COMMON_NAME = "dask-internal"
#: the folders of credential files for workers that read them (SLURM, SSH)
TLS_PREFIX = ".daskflow-tls-"
#: how long the certificate is valid: longer than any run
VALIDITY = datetime.timedelta(days=365)

_lock = threading.Lock()
_credentials: tuple[str, str] | None = None


def enabled() -> bool:
    """Whether clusters daskflow starts use TLS (``daskflow.cluster.tls``)."""
    return bool(config.get("cluster.tls"))


def make_credentials() -> tuple[str, str]:
    """A new self-signed EC (P-256) certificate and its key, as PEM strings.

    >>> cert, key = make_credentials()
    >>> cert.startswith("-----BEGIN CERTIFICATE-----"), "PRIVATE KEY" in key
    (True, True)
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(COMMON_NAME)]),
                           critical=False)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # clock skew
            .not_valid_after(now + VALIDITY)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def credentials() -> tuple[str, str]:
    """This driver process's certificate and key (PEM), made on first use, then reused.

    Raises :class:`TLSCredentialsError` (what failed, and what to do) when they cannot
    be made.
    """
    global _credentials
    with _lock:
        if _credentials is None:
            try:
                _credentials = make_credentials()
            except ImportError as exc:
                raise TLSCredentialsError(
                    f"The clusters daskflow starts use TLS, which needs the cryptography "
                    f"package ({exc}). Install daskflow again with its dependencies "
                    f"(pip install daskflow), or turn TLS off with "
                    f"DASK_DASKFLOW__CLUSTER__TLS=false.") from exc
            except Exception as exc:
                raise TLSCredentialsError(
                    f"Could not make the run's TLS credentials: {type(exc).__name__}: "
                    f"{exc}. Turn TLS off with DASK_DASKFLOW__CLUSTER__TLS=false if this "
                    f"machine cannot make them.") from exc
        return _credentials


def _credentials_ahead() -> None:
    try:
        credentials()
    except TLSCredentialsError:
        pass  # the first cluster that needs them tries again and fails the run with this


def start() -> None:
    """Begin making this process's credentials in the background (when TLS is on)."""
    if enabled() and _credentials is None:
        # Not a daemon: a process that exits early (a refused option) waits the few
        # milliseconds left, instead of killing the thread inside OpenSSL, which aborts.
        threading.Thread(target=_credentials_ahead, name="daskflow-tls").start()


def cluster_security() -> Any:
    """The ``security=`` of a cluster daskflow starts: a Security with this process's
    credentials for every role, encryption required; None when ``cluster.tls`` is off."""
    if not enabled():
        return None
    from distributed.security import Security
    cert, key = credentials()
    return Security(require_encryption=True, tls_ca_file=cert,
                    tls_client_cert=cert, tls_client_key=key,
                    tls_scheduler_cert=cert, tls_scheduler_key=key,
                    tls_worker_cert=cert, tls_worker_key=key)


class CredentialFiles:
    """The credentials as files in a private (0700) folder under ``parent``, for workers
    that read them from a shared filesystem (SLURM jobs); :meth:`remove` deletes them.

    ``security`` is a Security naming those files, so a job script carries paths, never
    a key.
    """

    def __init__(self, parent: str) -> None:
        os.makedirs(parent, exist_ok=True)
        # mode 0700, named by this process: a later run sweeps it if this one is killed
        self.folder = tempfile.mkdtemp(prefix=owned_prefix(TLS_PREFIX), dir=parent)
        cert, key = credentials()
        paths = {}
        for name, text in (("cert.pem", cert), ("key.pem", key)):
            path = paths[name] = os.path.join(self.folder, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        from distributed.security import Security
        cert_file, key_file = paths["cert.pem"], paths["key.pem"]
        self.security = Security(
            require_encryption=True, tls_ca_file=cert_file,
            tls_client_cert=cert_file, tls_client_key=key_file,
            tls_scheduler_cert=cert_file, tls_scheduler_key=key_file,
            tls_worker_cert=cert_file, tls_worker_key=key_file)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

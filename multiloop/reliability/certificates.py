"""Throwaway TLS contexts for checks that need a TLS peer: one self-signed certificate, made on the spot.

Facts: the standard library can load certificates but not make them, and this project adds no dependency
for it; the ``openssl`` command-line tool is on every machine the checks run on in practice, and where it is
missing the caller skips its TLS part (None). A self-signed certificate that is its own CA is enough for a
client to verify the server: the client trusts exactly that certificate. The subjectAltName decides which
``server_hostname`` (``DNS:localhost``) or address (``IP:127.0.0.1``) it is valid for.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess


def self_signed_contexts(directory: str, san: str = "DNS:localhost") -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """(server context, client context) for a fresh self-signed certificate valid for ``san``, its files
    written in ``directory``; None when there is no ``openssl`` command."""
    if shutil.which("openssl") is None:
        return None
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client

#!/usr/bin/env python3
"""A TLS server that says goodbye, for wine.real.tls (run_tls_test.sh).

  closer.py PORT CERT KEY

On 127.0.0.1:PORT, for each connection: the TLS handshake, one record of
application data ("not syslog\\n", which an RFC 5425 client must take in
and ignore), then close_notify -- and the TCP connection stays open until
the client closes it (bounded by 60 s). So the only sign that the server
is gone is the close_notify itself, never an end of stream or a reset.
A connection that is not TLS (the script's readiness probe) is ignored.
Runs until killed.
"""
import socket
import ssl
import sys
import threading


def serve(ctx, conn):
    conn.settimeout(60)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        tls.sendall(b"not syslog\n")
        # Sends close_notify; then waits for the client's own close_notify
        # or its end of stream, whichever comes.
        tls.unwrap()
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main(argv):
    port, cert, key = int(argv[0]), argv[1], argv[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(ctx, conn), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""A stand-in for a backend replica behind nginx, for tests/e2e/ingress_errors_test.sh.

Answers every request 200 {"correlationId": <the X-Correlation-Id it received>, "path": ...}
with that id (lower-cased, as the backend normalizes it) in its own X-Correlation-Id header,
so the test sees what nginx handed on. Like the real backend (lib/src/http.c), a body
announced over 64 KiB is answered 413 at once and the connection closed while the client may
still be sending: the race that gave nginx's 502 when nginx forwarded such bodies. Each
oversized (or chunked: nginx buffers bodies and sends a length) body it gets is logged to
stdout: with the limit at nginx, none may arrive.

    fake_upstream.py PORT
"""
import json
import socket
import sys
import threading

MAX_BODY = 65536


def reply(conn, status, reason, body, cid, close):
    data = json.dumps(body).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n")
    if cid:
        head += f"X-Correlation-Id: {cid}\r\n"
    if close:
        head += "Connection: close\r\n"
    conn.sendall(head.encode() + b"\r\n" + data)


def serve(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            cid = headers.get("x-correlation-id", "").lower()
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY or headers.get("transfer-encoding"):
                print(f"oversized or chunked body reached the backend: {path} {length}", flush=True)
            if length > MAX_BODY:
                reply(conn, 413, "Payload Too Large",
                      {"message": "request body too large", "error": "payload_too_large",
                       "correlationId": cid}, cid, True)
                return
            if headers.get("transfer-encoding", "").lower() == "chunked":
                reply(conn, 400, "Bad Request", {"error": "chunked_not_expected"}, cid, True)
                return
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[:length], buf[length:]
            reply(conn, 200, "OK", {"correlationId": cid, "path": path, "bodyBytes": len(body)},
                  cid, False)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    port = int(sys.argv[1])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

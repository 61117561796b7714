"""The one GCS XML API request fake-gcs-server lacks, served through its JSON API.

Google Cloud Storage clients such as object_store upload an object with the XML API's
`PUT /BUCKET/OBJECT` (a create-only upload carries `x-goog-if-generation-match: 0`).
fake-gcs-server answers that request with 400 `invalid uploadType`, although its JSON API
multipart upload (`POST /upload/storage/v1/b/BUCKET/o?uploadType=multipart`) enforces the
same precondition atomically. This server listens where clients connect and turns each such
PUT into that multipart upload, with the precondition as `ifGenerationMatch`, answering as
GCS's XML API does (ETag and x-goog-generation headers; 412 PreconditionFailed; 404
NoSuchBucket). Every other request (GET, HEAD, DELETE, listings, the JSON API) is passed
through unchanged, so what is enforced, and how, is the emulator's own behaviour.

Usage: python gcsxml.py LISTEN_PORT UPSTREAM_PORT   (both on 127.0.0.1)
"""

import http.client
import json
import socket
import sys
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM_HOST = "127.0.0.1"
UPSTREAM_PORT = 0

# Hop-by-hop headers (RFC 9110, 7.6.1), never forwarded.
HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def xml_error(code, message):
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK hold every answer back by tens of milliseconds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self):
        self.started = time.monotonic()
        return super().parse_request()

    def log_message(self, fmt, *args):  # one line per request, on stderr (the log)
        ms = (time.monotonic() - getattr(self, "started", time.monotonic())) * 1000
        sys.stderr.write("%s %.0fms %s\n" % (time.strftime("%H:%M:%S"), ms, fmt % args))

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def upstream(self, method, path, body, headers):
        # One connection to the emulator per client connection, kept open between requests.
        for attempt in (1, 2):
            conn = getattr(self, "upstream_conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(UPSTREAM_HOST, UPSTREAM_PORT, timeout=120)
                self.upstream_conn = conn
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    self.upstream_conn = None
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.HTTPException, OSError):
                conn.close()
                self.upstream_conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def finish(self):
        conn = getattr(self, "upstream_conn", None)
        if conn is not None:
            conn.close()
        super().finish()

    def reply(self, status, headers, data, head=False):
        self.send_response(status)
        sent_length = False
        for k, v in headers:
            lk = k.lower()
            if lk in HOP:
                continue
            if lk == "content-length":
                if not head:
                    continue
                sent_length = True
            self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        elif not sent_length:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if not head and data:
            self.wfile.write(data)

    def passthrough(self):
        body = self.body() if self.command not in ("GET", "HEAD") else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        status, _, out_headers, data = self.upstream(self.command, self.path, body, headers)
        self.reply(status, out_headers, data, head=self.command == "HEAD")

    def xml_put(self, bucket, name):
        content = self.body()
        query = {"uploadType": "multipart", "name": name}
        match = self.headers.get("x-goog-if-generation-match")
        if match is not None:
            query["ifGenerationMatch"] = match.strip()
        metadata = {"name": name}
        content_type = self.headers.get("Content-Type") or "application/octet-stream"
        metadata["contentType"] = content_type
        boundary = "strata-" + uuid.uuid4().hex
        payload = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
            + json.dumps(metadata).encode()
            + f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        path = (
            f"/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?"
            + urllib.parse.urlencode(query)
        )
        status, _, _, data = self.upstream(
            "POST",
            path,
            payload,
            {"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        xml = [("Content-Type", "application/xml; charset=UTF-8")]
        if status == 200:
            try:
                obj = json.loads(data)
                etag = obj.get("etag") or obj.get("md5Hash") or obj["generation"]
                headers = [
                    ("ETag", '"%s"' % etag.strip('"')),
                    ("x-goog-generation", str(obj["generation"])),
                ]
            except (ValueError, KeyError, TypeError) as e:
                return self.reply(502, xml, xml_error("InternalError", f"bad upload answer: {e}"))
            return self.reply(200, headers, b"")
        if status == 412:
            return self.reply(
                412,
                xml,
                xml_error(
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold.",
                ),
            )
        if status == 404:
            return self.reply(
                404, xml, xml_error("NoSuchBucket", "The specified bucket does not exist.")
            )
        return self.reply(status, xml, xml_error("InternalError", data.decode(errors="replace")))

    def do_PUT(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.lstrip("/").split("/", 1)
        is_object = (
            len(parts) == 2
            and parts[1]
            and parts[0] not in ("upload", "storage", "_internal", "download", "batch")
            and not url.query
            and "x-goog-copy-source" not in {k.lower() for k in self.headers.keys()}
        )
        if not is_object:
            return self.passthrough()
        bucket = urllib.parse.unquote(parts[0])
        name = urllib.parse.unquote(parts[1])
        self.xml_put(bucket, name)

    do_GET = passthrough
    do_HEAD = passthrough
    do_DELETE = passthrough
    do_POST = passthrough
    do_PATCH = passthrough


def main():
    global UPSTREAM_PORT
    listen, UPSTREAM_PORT = int(sys.argv[1]), int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", listen), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A loopback HTTP proxy in front of the moto server, for the AWS tests.

It forwards every request unchanged and writes the AWS action of each (the `Action=`
of a query-protocol body, or the operation of an `X-Amz-Target` header) to a log file,
one per line, so that a test can count the API calls a command made. Requests whose
action is listed in the file named by --delay-file (one action per line, re-read on each
request) are held for --delay seconds first: a slow AWS, to interrupt a command while
it waits. With --bodies FILE, each request's parameters are appended to FILE too, one JSON
object a line (`{"action": …, "params": {…}}` for the query protocol of EC2,
`{"action": …, "json": {…}}` for JSON APIs): what the AWS side was asked, in full. With
--answers DIR, an action for which DIR/<action>.json exists is answered with that file
(status 200, JSON 1.1) instead of moto: an API that moto lacks (the Price List's
GetProducts), answered as AWS documents it.

    aws-proxy.py --listen PORT --upstream http://127.0.0.1:MOTO --log FILE --delay-file FILE
"""
import argparse
import http.client
import json
import http.server
import socketserver
import time
import urllib.parse


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--delay-file", required=True)
    p.add_argument("--delay", type=float, default=60)
    # A registry host that GetAuthorizationToken answers as ECR's (its proxyEndpoint), read
    # from this file when it exists: the tests push to a real registry on 127.0.0.1 as
    # if it were the account's ECR registry.
    p.add_argument("--ecr-registry-file")
    p.add_argument("--bodies")
    p.add_argument("--answers")
    args = p.parse_args()
    upstream = urllib.parse.urlparse(args.upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = self.headers.get("X-Amz-Target")
            if target:
                action = target.rsplit(".", 1)[-1]
            else:
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                action = (form.get("Action") or query.get("Action") or ["?"])[0]
            with open(args.log, "a") as log:
                log.write(action + "\n")
            if args.bodies:
                if target:
                    try:
                        entry = {"action": action, "json": json.loads(body or b"{}")}
                    except ValueError:
                        entry = {"action": action, "raw": body.decode("utf-8", "replace")}
                else:
                    entry = {"action": action, "params": {k: v[0] for k, v in form.items()}}
                with open(args.bodies, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            try:
                with open(args.delay_file) as f:
                    delayed = {line.strip() for line in f if line.strip()}
            except FileNotFoundError:
                delayed = set()
            if action in delayed:
                time.sleep(args.delay)
            if args.answers:
                try:
                    with open(f"{args.answers}/{action}.json", "rb") as f:
                        canned = f.read()
                except (FileNotFoundError, ValueError):
                    canned = None
                if canned is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(canned)))
                    self.end_headers()
                    self.wfile.write(canned)
                    return
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if action == "GetAuthorizationToken" and args.ecr_registry_file:
                try:
                    with open(args.ecr_registry_file) as f:
                        host = f.read().strip()
                except FileNotFoundError:
                    host = ""
                if host:
                    doc = json.loads(data)
                    for auth in doc.get("authorizationData", []):
                        auth["proxyEndpoint"] = "https://" + host
                    data = json.dumps(doc).encode()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", args.listen), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()

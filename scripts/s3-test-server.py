"""The S3-compatible server of bf's tests: moto's S3 in server mode, with two
things a real store such as MinIO has and moto's server lacks.

- Requests are applied one at a time. moto checks `If-None-Match: *` and then
  stores the object in two steps, so two concurrent creators of one Delta log
  entry could both succeed; MinIO makes that check atomic, and so does this.
- With --credentials, requests must be signed with that key, as on MinIO;
  moto alone accepts any key.
- With --data-dir, objects are durable: every change is mirrored to files
  before its answer is sent, and a restarted server starts with them.
  Multipart uploads in progress are not kept (MinIO keeps them). The
  restart-mid-write tests kill it and start it again on the same folder.

Usage: s3-test-server.py --port P [--bucket NAME] [--credentials ID:SECRET]
                          [--data-dir DIR]
"""

import argparse
import json
import os
import threading

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
from werkzeug.serving import run_simple

REGION = "us-east-1"
MUTATING = {"PUT", "POST", "DELETE"}


def backend():
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


class Mirror:
    """The objects of every bucket as files DIR/BUCKET/KEY."""

    def __init__(self, root):
        self.root = root
        self.etags = {}  # (bucket, key) -> etag of the stored file

    def load(self):
        os.makedirs(self.root, exist_ok=True)
        for bucket in sorted(os.listdir(self.root)):
            backend().create_bucket(bucket, REGION)
            bucket_dir = os.path.join(self.root, bucket)
            for folder, _, files in os.walk(bucket_dir):
                for name in files:
                    if name.endswith(".partial"):  # a write cut short by a kill
                        continue
                    path = os.path.join(folder, name)
                    key = os.path.relpath(path, bucket_dir).replace(os.sep, "/")
                    with open(path, "rb") as f:
                        stored = backend().put_object(bucket, key, f.read())
                    self.etags[(bucket, key)] = stored.etag

    def sync(self):
        """Writes what changed since the last call; removes what was deleted."""
        current = {}
        for name, bucket in list(backend().buckets.items()):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)
            for key, stored in bucket.keys.items():
                current[(name, key)] = stored
        for (bucket, key), stored in current.items():
            if self.etags.get((bucket, key)) != stored.etag:
                path = os.path.join(self.root, bucket, *key.split("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".partial", "wb") as f:
                    f.write(stored.value)
                os.replace(path + ".partial", path)
                self.etags[(bucket, key)] = stored.etag
        for bucket, key in set(self.etags) - set(current):
            os.remove(os.path.join(self.root, bucket, *key.split("/")))
            del self.etags[(bucket, key)]


# The path and query of the request being handled, as the client sent them.
raw_uri = None


def require_credentials(key_id, secret):
    """Turns on moto's request authentication with one user allowed everything."""
    from moto import settings
    from moto.iam.access_control import IAMRequestBase
    from moto.iam.models import iam_backends

    # moto signs the decoded query again to check a signature, so a query value
    # with a "/" (ListObjectsV2's start-after) never matches; sign what was sent.
    create_request = IAMRequestBase._create_aws_request

    def create_request_as_sent(self):
        request = create_request(self)
        request.url = raw_uri
        return request

    IAMRequestBase._create_aws_request = create_request_as_sent

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user(REGION, "bf")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy("bf", "everything", json.dumps(everything))
    key = iam.create_access_key("bf")
    key.access_key_id, key.secret_access_key = key_id, secret


def serialised(app, mirror):
    lock = threading.Lock()

    def handle(environ, start_response):
        global raw_uri
        # MinIO's liveness endpoint, which `bf infra start` waits on.
        if environ.get("PATH_INFO") == "/minio/health/live":
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        with lock:
            raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
            body = b"".join(app(environ, start_response))
            if mirror is not None and environ["REQUEST_METHOD"] in MUTATING:
                mirror.sync()
        return [body]

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--credentials", metavar="ID:SECRET")
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    if args.credentials:
        require_credentials(*args.credentials.split(":", 1))

    mirror = Mirror(args.data_dir) if args.data_dir else None
    if mirror is not None:
        mirror.load()
    for bucket in args.bucket:
        if bucket not in backend().buckets:
            backend().create_bucket(bucket, REGION)
    if mirror is not None:
        mirror.sync()

    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", args.port, serialised(app, mirror), threaded=True)


if __name__ == "__main__":
    main()

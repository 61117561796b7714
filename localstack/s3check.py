#!/usr/bin/env python3
"""Signed S3 requests against a local test server.

Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL.

  s3check.py ready BUCKET [--timeout S] [--pid-file F ...]
      Wait until a signed ListObjectsV2 on BUCKET succeeds, creating the
      bucket if it does not exist. Silent on success.
  s3check.py conditional BUCKET
      Check that conditional PUTs are refused: If-None-Match: * on an
      existing key, and If-Match with a wrong ETag. Also reports whether
      If-Match with the right ETag is accepted quoted and unquoted.
"""

import argparse
import os
import sys
import time

for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402


def client(read_timeout=10):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=2,
            read_timeout=read_timeout,
            # checksums only where S3 requires them, as older SDKs do
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def error_code(exc):
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return err.get("Code"), status
    return None, None


def describe(exc):
    code, status = error_code(exc)
    if code or status:
        return f"HTTP {status} {code}"
    return f"{type(exc).__name__}: {exc}"


def pid_alive(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, ValueError, IndexError):
        return False


def cmd_ready(args):
    deadline = time.monotonic() + args.timeout
    s3 = client(read_timeout=5)
    last = "no attempt"
    while True:
        for p in args.pid_file:
            if not pid_alive(p):
                print(f"server process from {p} is not running (last S3 answer: {last})", file=sys.stderr)
                return 2
        try:
            s3.list_objects_v2(Bucket=args.bucket, MaxKeys=1)
            return 0
        except (ClientError, BotoCoreError) as exc:
            last = describe(exc)
            code, _ = error_code(exc)
            if code == "NoSuchBucket":
                try:
                    s3.create_bucket(Bucket=args.bucket)
                    continue
                except (ClientError, BotoCoreError) as exc2:
                    code2, _ = error_code(exc2)
                    if code2 in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        continue
                    last = "CreateBucket: " + describe(exc2)
        if time.monotonic() >= deadline:
            print(f"no successful signed ListObjectsV2 on bucket {args.bucket!r} within "
                  f"{args.timeout:.0f} s (last answer: {last})", file=sys.stderr)
            return 1
        time.sleep(0.25)


def cmd_conditional(args):
    s3 = client()
    key = "strata-s3check/conditional-probe"
    ok = True

    def put(label, expect_ok, **kw):
        nonlocal ok
        try:
            resp = s3.put_object(Bucket=args.bucket, Key=key, Body=label.encode(), **kw)
            got = f"HTTP {resp['ResponseMetadata']['HTTPStatusCode']}"
            passed = expect_ok
        except ClientError as exc:
            _, status = error_code(exc)
            got = describe(exc)
            passed = (not expect_ok) and status in (409, 412)
        if expect_ok is not None:
            ok = ok and passed
            mark = "ok  " if passed else "FAIL"
        else:
            mark = "info"
        print(f"{mark} {label}: {got}")

    s3.delete_object(Bucket=args.bucket, Key=key)
    put("PUT If-None-Match:* on a new key", True, IfNoneMatch="*")
    put("PUT If-None-Match:* on an existing key (must be refused)", False, IfNoneMatch="*")
    put("PUT If-Match with a wrong quoted ETag (must be refused)", False,
        IfMatch='"00000000000000000000000000000000"')
    put("PUT If-Match with a wrong unquoted ETag (must be refused)", False,
        IfMatch="00000000000000000000000000000000")
    etag = s3.head_object(Bucket=args.bucket, Key=key)["ETag"].strip('"')
    put("PUT If-Match with the right ETag, quoted", None, IfMatch=f'"{etag}"')
    etag = s3.head_object(Bucket=args.bucket, Key=key)["ETag"].strip('"')
    put("PUT If-Match with the right ETag, unquoted", None, IfMatch=etag)
    s3.delete_object(Bucket=args.bucket, Key=key)
    print("conditional writes: " + ("refused as required" if ok else "NOT refused as required"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("bucket")
    r.add_argument("--timeout", type=float, default=60)
    r.add_argument("--pid-file", action="append", default=[])
    c = sub.add_parser("conditional")
    c.add_argument("bucket")
    args = ap.parse_args()
    return {"ready": cmd_ready, "conditional": cmd_conditional}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

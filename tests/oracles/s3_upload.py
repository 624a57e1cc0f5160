"""Creates a bucket on an S3-compatible endpoint and uploads files into it with boto3.

Usage: python s3_upload.py ENDPOINT BUCKET PREFIX FILE...
Each FILE goes to s3://BUCKET/PREFIX/<its name>; credentials from the environment.
"""
import sys
from pathlib import Path

import boto3


def main(endpoint: str, bucket: str, prefix: str, files: list) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    for f in files:
        s3.upload_file(f, bucket, f"{prefix}/{Path(f).name}")
    print(len(files))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])

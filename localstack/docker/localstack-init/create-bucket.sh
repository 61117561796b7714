#!/bin/sh
# Run by LocalStack (init hook "ready") inside its container.
set -e
awslocal s3api create-bucket --bucket strata >/dev/null 2>&1 ||
  awslocal s3api head-bucket --bucket strata

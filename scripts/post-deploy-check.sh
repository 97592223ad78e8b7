#!/usr/bin/env bash
# Post-deploy step for one (environment, region): the endpoint serves the config that was
# just deployed (SageMaker can roll back silently and still say InService), and answers.
# Env: ENDPOINT_NAME, EXPECTED_CONFIG (from the stack output), REGION, ROLE_ARN.
set -euo pipefail
python3 -m pip install --quiet "boto3==1.44.5"
python3 -m mlops.post_deploy_check \
  --endpoint-name "$ENDPOINT_NAME" \
  --expected-config "$EXPECTED_CONFIG" \
  --region "$REGION" \
  --role-arn "$ROLE_ARN" \
  --wait-seconds 1800 \
  --invoke-sample samples/flight-request.csv

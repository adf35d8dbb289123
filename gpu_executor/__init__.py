"""The executor that runs on each GPU host: SQS -> Plenoxels training -> S3 artifacts + DynamoDB state."""

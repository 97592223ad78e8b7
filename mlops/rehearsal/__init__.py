"""Deploy rehearsal: checks over the synthesized assembly for the classes of mistake that
cfn-lint, cdk-nag and botocore's shape checks pass but AWS refuses at deploy time or at
first use. Each rule cites the AWS documentation it encodes; tests/test_rehearsal.py runs
every rule on every stack of the default app and proves each can fail on a small fixture."""

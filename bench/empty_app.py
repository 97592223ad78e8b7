"""The baseline of bench_synth.py: a one-stack CDK app with one resource, synthesized with the
same CLI, venv and cdk.json context (feature flags, CDK's default validation) as app.py."""

import aws_cdk as cdk

app = cdk.App()
cdk.CfnWaitConditionHandle(cdk.Stack(app, "Empty"), "Nothing")
app.synth()

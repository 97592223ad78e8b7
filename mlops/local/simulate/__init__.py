"""`mlops local simulate`: a year of operation of the platform, replayed on the bundled data.

Month by month, the served model scores the month's flights through the real serving code
(inference.py from the registered model.tar.gz), data capture and ground-truth labels are
written in SageMaker's layout, the monitoring job (pipeline_steps/monitor.py) runs on its
schedule and publishes its metrics, the alarms are evaluated with CloudWatch's semantics, and
their transitions drive the retrain gate (lambda/retrain_gate/gate_logic.py, its own decision
functions). At each month's end the month's raw data lands: the new-data trigger and the
schedule start the training pipeline, run through the synthesized definition as in
`mlops local run`; the quality gate decides, the promotion policy promotes.

Modules: options (what is asked, checked), cloud (the AWS services the replay stands in for:
S3 listing, CloudWatch metrics and alarms, pipeline executions), traffic (requests, capture,
labels), endpoint (releases, the rollback alarms, a configured fault, the rollback Lambda's
decision), ahead (pipeline runs started ahead on the second core, adopted when provably the
same), replay (the clock and the triggers), schedule (its time arithmetic), report (the
months, timeline.json, summary.json, the monthly table and chart), cost (wall and CPU per
phase).
"""

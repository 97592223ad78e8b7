"""The definition's contract: step names, container and report paths, the processing bootstrap."""

from __future__ import annotations

from mlops.pipeline_definition.expressions import PropertyFile

DEFINITION_VERSION = "2020-12-01"

STEP_VALIDATE = "ValidateData"
STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_FIND_INCUMBENT = "FindIncumbent"
STEP_EVALUATE = "Evaluate"
STEP_CHECK_QUALITY = "CheckQuality"
STEP_REGISTER = "RegisterModel"
STEP_FAIL = "QualityGateFailed"

# Container paths (the local runner re-roots everything under /opt/ml/).
CODE_DIR = "/opt/ml/processing/input/code"
RAW_DIR = "/opt/ml/processing/input/raw"
JOINED_DIR = "/opt/ml/processing/input/joined"
REPORT_DIR = "/opt/ml/processing/report"
SPLIT_DIRS: dict[str, str] = {
    "train": "/opt/ml/processing/train",
    "validation": "/opt/ml/processing/validation",
    "test": "/opt/ml/processing/test",
}
BASELINE_DIR = "/opt/ml/processing/baseline"
MODEL_DIR = "/opt/ml/processing/model"
TEST_DIR = "/opt/ml/processing/test"
INCUMBENT_DIR = "/opt/ml/processing/incumbent"
EVALUATION_DIR = "/opt/ml/processing/evaluation"
CHECKPOINT_DIR = "/opt/ml/checkpoints"

EVALUATION_REPORT = PropertyFile("EvaluationReport", "evaluation", "evaluation.json")
AUC_PATH = "binary_classification_metrics.auc.value"
NON_INFERIOR_PATH = "comparison.non_inferior"
# The candidate's resolved split (preprocess decides it from the data; evaluate reports it).
WINDOW_PATHS = {
    "train_start": "window.train[0]",
    "train_end": "window.train[1]",
    "validation_end": "window.validation[1]",
    "test_start": "window.test[0]",
    "test_end": "window.test[1]",
}
MODEL_SHA256_PATH = "model.sha256"
OBJECTIVE_METRIC = "validation:auc"

# Processing entrypoint: python3 -c BOOTSTRAP <code dir> <script> [args...]. Extracts the one
# *.gz in the code dir (CDK names the asset <hash>.gz) to a temp folder, puts it first on
# sys.path and runs the script as
# __main__ with sys.argv = [script path, *args]. ContainerEntrypoint items are limited to 256
# characters, hence the terse form; shutil (not tarfile directly) keeps Python 3.12's
# extraction-filter DeprecationWarning out of the step's stderr.
BOOTSTRAP = (
    "import glob,runpy,shutil,sys,tempfile;a=sys.argv;"
    "len(f:=glob.glob(a[1]+'/*.gz'))==1 or sys.exit('ERROR: need one .gz in '+a[1]);"
    "d=tempfile.mkdtemp();shutil.unpack_archive(*f,d,'gztar');sys.path[:0]=[d];del a[:2];"
    "runpy.run_path(d+'/'+a[0],None,'__main__')"
)

APPROVAL_STATUSES: tuple[str, ...] = ("Approved", "PendingManualApproval", "Rejected")

# xgboost's evaluation log lines ("[12]\ttrain-auc:0.71\tvalidation-auc:0.70") and train.py's
# last line ("validation-auc: 0.712345", the best score) carry the metrics; the last value
# seen is the job's final one. CloudWatch shows a tab as #011: the patterns ignore it.
METRIC_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("train:auc", r"train-auc:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"),
    ("validation:auc", r"validation-auc:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"),
)

WINDOW_END_LATEST = "latest"

"""CDK's built-in CloudFormation validation, run once per distinct template.

aws-cdk-lib validates every template it writes with the CloudFormation Validate engine
(@aws/cloudformation-validate, CDK's default rules; cdk.json's
`@aws-cdk/core:validateAgainstDefaultRules` makes its errors fail synth). It is the largest
cost of `cdk synth`: starting the engine takes about 3.5 s of CPU and each template about
0.25 s, on every synth, although our templates are deterministic and most of them do not
change between two synths.

`CachedCloudFormationValidation` runs that same plugin, with the same rules, on the templates
it has not seen before, and replays the recorded findings of the ones it has. A finding is
recorded per template under a key over everything the result depends on: the template's
bytes, the stack path, the account and region the engine resolves pseudo parameters with,
and the aws-cdk-lib version (which pins the engine and its rules). The findings are replayed
into CDK's validation report unchanged, so acknowledgements, the error/warning treatment and
the synth failure stay CDK's own. Nothing is cached but a template's findings; an unreadable
entry is validated again. The engine starts only if some template is new, and before
the app's constructs exist when nothing is recorded yet (`start_engine_if_cold`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import constructs
import jsii
from constructs import IConstruct

# Bump when the recorded shape changes: old entries are then ignored, not misread.
CACHE_FORMAT = 1
_SEVERITIES_THAT_FAIL = ("error", "fatal")
_engine: cdk.CloudFormationValidatePlugin | None = None


def add_cached_cfn_validation(app: cdk.App, cache_dir: Path) -> CachedCloudFormationValidation:
    """Register the cached validation on an app built with builtin_cloud_formation_validation
    False (otherwise CDK would run its own plugin as well)."""
    plugin = CachedCloudFormationValidation(cache_dir)
    app.node.add_validation(_RegisterLate(app, plugin))
    return plugin


@jsii.implements(constructs.IValidation)
class _RegisterLate:
    """Adds the plugin while CDK validates the construct tree, just before it writes the
    templates and runs the plugins. CDK lists every plugin added earlier in each stack's
    AWS::CDK::Metadata (collected when it injects those resources, which is before this
    step) but not its built-in one, which this plugin stands in for: added here, every
    template stays byte-identical to the built-in path."""

    def __init__(self, app: cdk.App, plugin: CachedCloudFormationValidation) -> None:
        self._app = app
        self._plugin: CachedCloudFormationValidation | None = plugin

    def validate(self) -> list[str]:
        if self._plugin is not None:
            cdk.Validations.of(self._app).add_plugins(self._plugin)
            self._plugin = None
        return []


def validation_cache_dir(environ: Mapping[str, str], root: Path) -> Path:
    """MLOPS_VALIDATION_CACHE, or root/.cache/cfn-validate when it is unset or empty (an
    empty value would otherwise be the working directory)."""
    return Path(environ.get("MLOPS_VALIDATION_CACHE") or root / ".cache" / "cfn-validate")


def start_engine_if_cold(cache_dir: Path) -> bool:
    """Start the engine now, before the app builds its constructs, when the cache holds no
    recorded template at all (a clean clone, CI, the pipeline's synth step): every template
    will need it then. True if it started.

    Why early: while it starts, the engine grows its WebAssembly memory in ~90 steps and node
    20's V8 answers each with a full garbage collection, which marks every live JS object.
    Started after the construct tree exists, those collections cost about 1 s more CPU than
    in an empty heap (README, "Where synth time goes"). A cache with any entry is taken as
    warm: the engine then starts only if some template is new, as before, because starting
    it for a synth that needs it for nothing would cost the whole start."""
    if any(cache_dir.glob("*.json")):
        return False
    try:
        _shared_engine()
    except Exception:  # only a head start: validate() meets the same error and reports it
        return False
    return True


def _shared_engine() -> cdk.CloudFormationValidatePlugin:
    """One engine per process (CDK keeps a singleton for the same reason: it is expensive)."""
    global _engine
    if _engine is None:
        _engine = cdk.CloudFormationValidatePlugin()
    return _engine


@jsii.implements(cdk.IPolicyValidationContext)
class _Templates:
    """The subset of a validation context that still needs the engine."""

    def __init__(self, context: cdk.IPolicyValidationContext, stacks: list[Any]) -> None:
        self._context = context
        self._stacks = stacks

    @property
    def template_paths(self) -> list[str]:
        return [stack.template_path for stack in self._stacks]

    @property
    def stack_templates(self) -> list[cdk.PolicyValidationStack]:
        return self._stacks

    @property
    def account_id(self) -> str | None:
        return self._context.account_id

    @property
    def region(self) -> str | None:
        return self._context.region

    @property
    def app_construct(self) -> IConstruct:
        return self._context.app_construct


@jsii.implements(cdk.IPolicyValidationPlugin)
class CachedCloudFormationValidation:
    """CDK's CloudFormation Validate plugin, skipping templates validated before."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.validated: list[str] = []  # template paths the engine ran on (tests read it)
        self.replayed: list[str] = []  # template paths answered from the cache
        self.engine_version: str | None = None  # reported like CDK's plugin reports it
        self.unwritable = False  # the cache could not be written (warned once)
        self.failure: str | None = None  # why validate raised, if it did: nothing was checked

    @property
    def name(self) -> str:
        # CDK treats reports by this name as its default rules' (severity, acknowledgement ids).
        return cdk.CloudFormationValidatePlugin.PLUGIN_NAME

    @property
    def version(self) -> str | None:
        return self.engine_version

    @property
    def rule_ids(self) -> list[str] | None:
        return None

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        try:
            return self._validate(context)
        except Exception as error:
            # CDK records a plugin that raised, but drops that record from its report when
            # `@aws-cdk/core:validateAgainstDefaultRules` is off: app.py reads it from here.
            self.failure = f"{type(error).__name__}: {error}"
            raise

    def _validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        found: dict[str, list[dict[str, Any]]] = {}
        keys: dict[str, str] = {}
        new_stacks = []
        for stack in context.stack_templates:
            key = self._key(stack)
            keys[stack.template_path] = key
            recorded = self._read(key)
            if recorded is None:
                new_stacks.append(stack)
            else:
                self.engine_version, found[stack.template_path] = recorded
                self.replayed.append(stack.template_path)
        if new_stacks:
            engine = _shared_engine()
            report = engine.validate(_Templates(context, new_stacks))
            self.engine_version = engine.version
            fresh = _split_by_template(report, [s.template_path for s in new_stacks])
            for path, violations in fresh.items():
                self._write(keys[path], violations)
                found[path] = violations
                self.validated.append(path)
        merged = _merge(
            [(stack.template_path, found[stack.template_path]) for stack in context.stack_templates]
        )
        return cdk.PolicyValidationPluginReport(
            success=all(v.severity not in _SEVERITIES_THAT_FAIL for v in merged),
            violations=merged,
        )

    def _key(self, stack: cdk.PolicyValidationStack) -> str:
        digest = hashlib.sha256()
        header = [
            CACHE_FORMAT,
            version("aws-cdk-lib"),
            stack.stack_construct_path,
            stack.account_id,
            stack.region,
        ]
        digest.update(json.dumps(header).encode() + b"\n")
        digest.update(Path(stack.template_path).read_bytes())
        return digest.hexdigest()

    def _read(self, key: str) -> tuple[str | None, list[dict[str, Any]]] | None:
        """(engine version, findings) recorded under key; None if absent or unreadable."""
        try:
            recorded = json.loads((self.cache_dir / f"{key}.json").read_text())
            return recorded["engine_version"], list(recorded["violations"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, key: str, violations: list[dict[str, Any]]) -> None:
        """Record one template's findings. A cache that cannot be written (a file in its
        place, a read-only folder, a full disk) costs the next synth a validation, never this
        one its findings: they are reported all the same, with one warning."""
        temporary = None
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            # Write then rename: a concurrent or interrupted synth never reads half an entry.
            handle, temporary = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                json.dump(
                    {"engine_version": self.engine_version, "violations": violations},
                    file,
                    sort_keys=True,
                )
            os.replace(temporary, self.cache_dir / f"{key}.json")
            temporary = None
        except OSError as error:
            if not self.unwritable:
                print(
                    f"warning: validation cache {self.cache_dir} cannot be written "
                    f"({error.strerror or error}); templates are validated, not recorded",
                    file=sys.stderr,
                )
            self.unwritable = True
        finally:
            if temporary is not None:  # never leave half an entry behind
                with contextlib.suppress(OSError):
                    Path(temporary).unlink(missing_ok=True)


def _split_by_template(
    report: cdk.PolicyValidationPluginReport, paths: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The engine's findings, each template's on its own (template paths left out)."""
    by_path: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
    for violation in report.violations:
        for resource in violation.violating_resources:
            path = resource.template_path
            if path not in by_path:
                raise RuntimeError(f"CloudFormation Validate reported an unknown template {path}")
            by_path[path].append(
                {
                    "rule_name": violation.rule_name,
                    "description": violation.description,
                    "severity": violation.severity,
                    "fix": violation.fix,
                    "rule_metadata": dict(violation.rule_metadata or {}) or None,
                    "resource": {
                        "resource_logical_id": resource.resource_logical_id,
                        "construct_path": resource.construct_path,
                        "locations": list(resource.locations),
                    },
                }
            )
    return by_path


def _merge(findings: list[tuple[str, list[dict[str, Any]]]]) -> list[cdk.PolicyViolation]:
    """One violation per (rule, severity, description) with all its resources, as the
    engine's plugin reports them."""
    merged: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for template_path, violations in findings:
        for found in violations:
            key = (found["rule_name"], found["severity"], found["description"])
            entry = merged.setdefault(key, {**found, "resources": []})
            entry["resources"].append(
                cdk.PolicyViolatingResource(**found["resource"], template_path=template_path)
            )
    return [
        cdk.PolicyViolation(
            rule_name=entry["rule_name"],
            description=entry["description"],
            severity=entry["severity"],
            fix=entry["fix"],
            rule_metadata=entry["rule_metadata"],
            violating_resources=entry["resources"],
        )
        for entry in merged.values()
    ]

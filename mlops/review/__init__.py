"""`mlops review --base REF`: offline synth-and-diff review of the working tree against REF.

command runs the CLI (synthesizes both trees), compare turns two cloud assemblies into a
ReviewReport (model), security reads IAM, security group and cdk-nag changes, tables holds
the resource-type tables, render writes Markdown.
"""

from mlops.review.command import (
    ReviewError,
    add_arguments,
    attach_full_diffs,
    compare_assemblies,
    render_markdown,
    review,
    run,
)

__all__ = [
    "ReviewError",
    "add_arguments",
    "attach_full_diffs",
    "compare_assemblies",
    "render_markdown",
    "review",
    "run",
]

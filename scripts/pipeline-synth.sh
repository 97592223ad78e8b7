#!/usr/bin/env bash
# The delivery pipeline's synth step. Kept out of the pipeline definition so that changing
# these commands needs no self-mutation.
set -euo pipefail
make test
make synth

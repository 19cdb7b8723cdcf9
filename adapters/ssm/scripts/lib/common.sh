# Shared by every SSM document script. The loader (adapters/ssm/documents/index.ts)
# pastes this text where a script sources it: SSM sends a host only the document's text.
# shellcheck disable=SC2034 # the exit codes are used by the scripts that source this file

# Exit codes (the step's ResponseCode). The loader refuses to load unless they equal
# EXIT in adapters/ssm/documents/definitions.ts, from which the adapter reads them.
EXIT_BAD_PARAMETER=2
EXIT_UNKNOWN_DOMAIN=10
EXIT_FAILED=11
EXIT_NOT_CONFIRMED=12

# no_newlines VALUE...: defence in depth after allowedPattern (some regex engines let
# `$` match before a final newline): refuse a value with a newline before anything runs.
no_newlines() {
  nl='
'
  for value in "$@"; do
    case "$value" in *"$nl"*) echo "CC1_ERROR=bad_parameter: newline in a parameter" >&2; exit "$EXIT_BAD_PARAMETER";; esac
  done
}

# fail MESSAGE...: a tool ran and failed.
fail() { echo "CC1_ERROR=failed: $*" >&2; exit "$EXIT_FAILED"; }

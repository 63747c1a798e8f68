"""Schema fuzzing: schemathesis against a running Partnerloop (`python -m tests.fuzz`, run by .ci/run)."""

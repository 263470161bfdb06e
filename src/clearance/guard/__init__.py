"""The misuse guard: a classifier the provider trusts checks the prompts and completions of
guarded models (docs/guard.md); its verdict is a fact the policy decides on, flags count per
person, and a person past the threshold loses controlled models pending review."""

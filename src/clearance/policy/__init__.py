"""The export-control policy: facts -> Cedar entities, a pre-parsed policy set, decisions."""

"""Change detection, pure: a finding reduced to what is compared (snapshot) and the events between two
snapshots (diff)."""

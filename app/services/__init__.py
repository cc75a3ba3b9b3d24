"""Use cases, one transaction each. Views and worker jobs call these; they call domain, db, channels, HIS."""

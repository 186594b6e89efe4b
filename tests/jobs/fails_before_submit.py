"""A script that raises before it submits anything: no JobID line, exit code != 0."""
raise RuntimeError("fjs test: configuration table 'dim_users' does not exist")

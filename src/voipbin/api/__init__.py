"""HTTP edge: one router module per resource, auth, error envelope, pagination."""

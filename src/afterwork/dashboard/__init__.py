"""See and steer: the operator API, the dashboard page, metrics and traces (all off unless
enabled; see `Afterwork(dashboard=..., dashboard_token=..., dashboard_auth=..., metrics=...,
tracing=...)`)."""

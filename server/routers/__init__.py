"""One router per resource: videos (jobs), their live stream, and health/metrics."""

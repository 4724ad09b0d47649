"""MotionCache RQ worker: loads the engine once, runs generation jobs one after another, publishes every chunk
to the job's Redis Stream and the request's figures to its job record and to Prometheus."""

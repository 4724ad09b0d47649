"""MotionCache HTTP front end (FastAPI). Validates, enqueues, streams; never imports torch.

`server.jobstore` and `server.chunkstream` are the Redis contract shared with the workers.
"""

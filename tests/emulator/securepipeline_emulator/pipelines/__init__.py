"""Pipeline runs: executions of the pipelines the provider created.

`PipelineRunner` (engine.py) runs them; `operations` are CodePipeline's
execution API (api.py) and SNS Publish, recorded (published.py); `admin`
serves the endpoints for repositories, pushes, schedules and published
messages (admin.py).
"""

from .engine import PipelineRunner

__all__ = ["PipelineRunner"]

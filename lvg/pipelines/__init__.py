from .pipeline import Pipeline, PipelineOutput

__all__ = ["Pipeline", "PipelineOutput"]

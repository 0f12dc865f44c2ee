"""SQL templates (installed as eval_pipelines.sql); see sqlbuild.py for how they are filled."""

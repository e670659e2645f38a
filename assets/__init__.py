"""Package data, installed as ``gradviz.assets`` (see pyproject.toml): ``scenarios/*.toml``, the
bundled scenarios, found by ``gradviz.scenario.bundled``."""

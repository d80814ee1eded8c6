"""What ``vidsr bench`` measures when not told: kept apart from ``vidsr.engine.bench`` (which
imports torch) so that the command line can name them in its help without that import."""

DEFAULT_MODELS = ("ecbsr-m4c16-x2", "ecbsr-m4c8-x2", "esr-tm-k7c16-x2", "esr-max-k7c4-x2")
DEFAULT_SIZES = ("960x540", "1280x720", "1920x1080")

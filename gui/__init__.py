"""vidsr's desktop GUI, installed as the package ``vidsr_gui``."""

"""fewshot-apps: few-shot meta-learning for cold-start recommendation and molecules."""

__version__ = "0.1.0"

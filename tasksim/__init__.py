"""tasksim: task taxonomies from model similarity."""

__version__ = "0.1.0"

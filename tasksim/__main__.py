"""``python -m tasksim``: the ``tasksim`` console command (:mod:`tasksim.cli`)."""
import sys

from tasksim.cli import main

sys.exit(main())

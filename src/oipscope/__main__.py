"""Allow ``python -m oipscope``."""

from .cli import main

main()

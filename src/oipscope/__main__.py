"""Allow ``python -m oipscope``."""

from .cli.commands import main

if __name__ == "__main__":  # not when a spawned worker process imports this module as its main
    main()

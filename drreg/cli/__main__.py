"""``python -m drreg.cli``: the ``drreg`` command."""

from drreg.cli import main

if __name__ == "__main__":
    main()

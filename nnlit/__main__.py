"""``python -m nnlit``: the ``nnlit`` command."""

from nnlit.cli import main

if __name__ == "__main__":
    main()

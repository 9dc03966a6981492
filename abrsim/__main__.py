"""``python -m abrsim`` runs the command line."""

from abrsim.cli import main

main()

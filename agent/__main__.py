"""``python -m agent`` runs the ``ponctl`` command."""

from agent.cli import main

main()

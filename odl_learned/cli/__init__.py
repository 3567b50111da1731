"""The ``odl-learned`` command line: ``demo``, ``benchmark``, ``reconstruct``.

Each subcommand is a module with ``add_parser(subparsers)``;
:mod:`odl_learned.cli.main` assembles them.
"""

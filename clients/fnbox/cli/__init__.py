"""The ``fnbox`` command-line interface (entry point: :func:`fnbox.cli.main.main`)."""

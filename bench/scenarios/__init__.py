"""One module per scenario; each measures fnbox and its baseline in the same run."""

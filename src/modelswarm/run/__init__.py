"""One run, top to bottom: prepare (every input checked once), the search loop, the end."""

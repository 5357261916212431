"""Speed figures for the portal (``make bench``); see bench/README.md for every method."""

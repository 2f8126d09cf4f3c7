"""The memlearn command line."""

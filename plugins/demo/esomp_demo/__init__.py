"""`esomp demo`: create a site, generate an exchange day, run it, show the table."""

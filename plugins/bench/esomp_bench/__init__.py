"""esomp bench day: the seed's clearing day, timed against the floor and the naive way."""

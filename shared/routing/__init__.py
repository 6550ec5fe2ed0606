"""One routing, from both sides: the table that decides it, the task message that carries it, the
publisher that hands it to the workers, and the record that tells what became of it."""

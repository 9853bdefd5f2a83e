"""What a generator is conditioned on: the category, attributes (colour, material, pattern) and the
product's own text, turned into the integer ids the networks take."""

"""Customer-value maths: BG/NBD, Gamma-Gamma and discounted CLV over numpy arrays, without I/O."""

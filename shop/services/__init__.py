"""Plain-function services of the demo shop; management commands and views stay thin and call these."""

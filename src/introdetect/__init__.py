"""introdetect: find the intro of TV-series episodes."""

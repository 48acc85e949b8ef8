"""Stage one: turn each episode into a per-step feature sequence (see ``extract``)."""
